"""The optional metrics against their references: HFEN's LoG against MATLAB's definition and
scipy's independent LoG, HaarPSI and VIF against piq's own functions, ssim_fg against
fastMRI's SSIM (a foreground of every pixel) and scikit-image's SSIM map."""

from __future__ import annotations

import numpy as np
import piq
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from mri_recon.metrics.image import ssim
from mri_recon.metrics.optional import (
    _log_filter,
    check_metrics,
    foreground,
    haarpsi,
    hfen,
    log_kernel,
    optional_metrics,
    ssim_fg,
    vif,
)


def _pair(shape=(2, 48, 45), seed=0):
    """A disc phantom with a noisy background (target) and a blurred, noisier recon."""
    rng = np.random.default_rng(seed)
    s, h, w = shape
    y, x = np.mgrid[:h, :w]
    disc = ((y - h / 2) ** 2 + (x - w / 2.2) ** 2 < (h / 3) ** 2).astype(np.float32)
    target = disc[None] * (1 + 0.2 * rng.random(shape)) + 0.02 * rng.random(shape)
    recon = ndimage.gaussian_filter(target, (0, 1, 1)) + 0.05 * rng.standard_normal(shape)
    return target.astype(np.float32), recon.astype(np.float32)


def test_log_kernel_is_matlabs_fspecial_log() -> None:
    k = log_kernel()
    assert k.shape == (15, 15) and abs(k.sum()) < 1e-12
    np.testing.assert_allclose(k, k.T) and np.testing.assert_allclose(k, k[::-1])
    # fspecial('log', 3, 0.5), as MATLAB documents its construction, by hand
    g = np.exp(-np.array([[2, 1, 2], [1, 0, 1], [2, 1, 2]]) / 0.5)
    g /= g.sum()
    lap = g * (np.array([[2, 1, 2], [1, 0, 1], [2, 1, 2]]) - 0.5) / 0.0625
    np.testing.assert_allclose(log_kernel(3, 0.5), lap - lap.mean(), rtol=1e-12)
    # an independent LoG (scipy's sampled Gaussian derivatives) has the same shape
    impulse = np.zeros((15, 15))
    impulse[7, 7] = 1
    ref = ndimage.gaussian_laplace(impulse, 1.5, mode="constant")
    assert np.corrcoef(ref.ravel(), k.ravel())[0, 1] > 0.99


def test_hfen_definition_and_scipy_reference() -> None:
    target, recon = _pair()
    # the filter is imfilter's: correlation with fspecial('log', 15, 1.5), zero padding
    filtered = _log_filter(target).numpy()
    for s, t in zip(filtered, target, strict=True):
        np.testing.assert_allclose(s, ndimage.correlate(t.astype(float), log_kernel(),
                                   mode="constant"), atol=1e-12)  # fmt: skip
    assert hfen(target, target) == 0.0
    assert hfen(target, np.zeros_like(target)) == pytest.approx(1.0)

    # imfilter's zero padding and a LoG of the same sigma from scipy: within a few percent
    def ref_filter(v):
        return np.stack(
            [ndimage.gaussian_laplace(s, 1.5, mode="constant") for s in v.astype(float)]
        )

    ref = np.linalg.norm(ref_filter(recon) - ref_filter(target)) / np.linalg.norm(
        ref_filter(target)
    )
    assert hfen(target, recon) == pytest.approx(ref, rel=0.05)
    # pooled over the volume, not a mean of slice ratios
    t2, r2 = target.copy(), recon.copy()
    t2[1] *= 10
    r2[1] *= 10
    per_slice = [hfen(t2[i : i + 1], r2[i : i + 1]) for i in range(2)]
    assert hfen(t2, r2) != pytest.approx(np.mean(per_slice), rel=1e-3)


def test_haarpsi_and_vif_are_piqs_per_slice_means() -> None:
    target, recon = _pair(shape=(2, 64, 61))
    vmax = float(target.max())
    x = torch.from_numpy(np.clip(recon, 0, vmax))[:, None]
    y = torch.from_numpy(target)[:, None]
    for ours, theirs in ((haarpsi, piq.haarpsi), (vif, piq.vif_p)):
        expected = theirs(x, y, data_range=vmax, reduction="none").mean().item()
        assert ours(target, recon) == pytest.approx(expected, rel=1e-6)
        assert ours(target, target) == pytest.approx(1.0, abs=1e-5)  # float32
        assert ours(target, recon) < 0.99
    # scale-free: everything times 100 (data range too) gives the same numbers
    assert haarpsi(100 * target, 100 * recon) == pytest.approx(haarpsi(target, recon), rel=1e-6)


def test_ssim_fg_is_fastmri_ssim_on_every_pixel_and_the_map_mean_inside() -> None:
    target, recon = _pair()
    everything = ssim_fg(target, recon, threshold=-np.inf)
    assert everything == pytest.approx(ssim(target, recon), abs=1e-12)
    fg = foreground(target)
    assert fg[:, 24, 20].all() and not fg[:, 0, 0].any()
    maps = [structural_similarity(t, r, data_range=target.max(), full=True)[1]
            for t, r in zip(target, recon, strict=True)]  # fmt: skip
    inner = fg.copy()
    inner[:, :3], inner[:, -3:], inner[:, :, :3], inner[:, :, -3:] = False, False, False, False
    expected = np.concatenate([m[i] for m, i in zip(maps, inner, strict=True)]).astype(float).mean()
    assert ssim_fg(target, recon) == pytest.approx(expected, rel=1e-9)
    # a denoiser that flattens the background loses nothing inside the foreground
    flat = np.where(fg, target, 0).astype(np.float32)
    assert ssim_fg(target, flat) > ssim(target, flat)


def test_metric_names_are_checked() -> None:
    assert check_metrics(["ssim", "psnr", "nmse", "vif", "hfen"]) == ("hfen", "vif")
    with pytest.raises(ValueError, match="^metrics: must be one of .*got 'lpips'"):
        check_metrics(["ssim", "lpips"])
    target, recon = _pair(shape=(1, 48, 45))
    out = optional_metrics(target, recon, ("hfen", "ssim_fg", "haarpsi", "vif"))
    assert list(out) == ["hfen", "ssim_fg", "haarpsi", "vif"]
    assert all(np.isfinite(v) for v in out.values())
