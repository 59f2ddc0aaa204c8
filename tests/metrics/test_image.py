"""Per-volume metrics: bit-parity with fastmri.evaluate, and agreement with an independent
numpy computation (own NMSE/PSNR formulas, scikit-image SSIM per slice averaged)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastmri import evaluate as fe
from skimage.metrics import structural_similarity

from mri_recon.metrics.image import (
    mean_slice_ssim,
    nmse,
    psnr,
    slice_ssim,
    ssim,
    volume_metrics,
)


def _volume_pair(seed: int, shape=(3, 24, 17)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth positive non-square target and a noisy reconstruction, float32."""
    rng = np.random.default_rng(seed)
    s, h, w = shape
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    base = np.exp(-(xx**2 + yy**2) * 2.0)
    target = np.stack([base * (1 + 0.3 * k) + 0.1 * rng.random((h, w)) for k in range(s)])
    target = (target * 1e-4).astype(np.float32)  # fastMRI-like intensity scale
    recon = (target + 1e-5 * rng.standard_normal(target.shape)).astype(np.float32)
    return target, recon


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bit_parity_with_fastmri_evaluate(seed: int) -> None:
    target, recon = _volume_pair(seed)
    got = volume_metrics(target, recon)
    assert got["nmse"] == float(fe.nmse(target, recon))
    assert got["psnr"] == float(fe.psnr(target, recon))
    expected_ssim = fe.ssim(target, recon)
    assert expected_ssim.shape == (1,)  # fastmri returns a 1-element array
    assert got["ssim"] == float(expected_ssim[0])
    assert all(isinstance(v, float) for v in got.values())


@pytest.mark.parametrize("seed", [3, 4])
def test_independent_numpy_computation(seed: int) -> None:
    target, recon = _volume_pair(seed, shape=(4, 20, 29))
    t64, r64 = target.astype(np.float64), recon.astype(np.float64)
    max_value = t64.max()
    own_nmse = np.sum((t64 - r64) ** 2) / np.sum(t64**2)
    own_psnr = 10 * np.log10(max_value**2 / np.mean((t64 - r64) ** 2))
    own_ssim = np.mean(
        [structural_similarity(t64[i], r64[i], data_range=max_value) for i in range(4)]
    )
    got = volume_metrics(target, recon)
    assert got["nmse"] == pytest.approx(own_nmse, rel=1e-5)
    assert got["psnr"] == pytest.approx(own_psnr, rel=1e-6)
    assert got["ssim"] == pytest.approx(own_ssim, rel=1e-5, abs=1e-6)
    assert 0 < got["ssim"] < 1 and got["nmse"] > 0


def test_data_range_is_the_volume_max_not_the_slice_max() -> None:
    target, recon = _volume_pair(5)
    target[0] *= 0.2  # a dim slice: slice max << volume max
    recon[0] *= 0.2
    vol_max = float(target.max())
    per_slice = [slice_ssim(target[i], recon[i], vol_max) for i in range(len(target))]
    assert mean_slice_ssim(per_slice) == ssim(target, recon)  # identical, not approx
    own_max = [slice_ssim(target[i], recon[i], float(target[i].max())) for i in range(3)]
    assert mean_slice_ssim(own_max) != ssim(target, recon)


def test_explicit_max_value_and_torch_inputs() -> None:
    target, recon = _volume_pair(6)
    got = volume_metrics(torch.from_numpy(target), torch.from_numpy(recon), max_value=2e-4)
    # an explicit data range is used in the arrays' precision, as fastmri's gt.max() is
    assert got["psnr"] == float(fe.psnr(target, recon, maxval=np.float32(2e-4)))
    assert got["ssim"] == float(fe.ssim(target, recon, maxval=np.float32(2e-4))[0])
    assert psnr(target, recon, 2e-4) > psnr(target, recon)  # larger range, higher PSNR


def test_perfect_reconstruction() -> None:
    target, _ = _volume_pair(7)
    assert nmse(target, target) == 0.0
    assert ssim(target, target) == pytest.approx(1.0)


def test_bad_inputs_name_the_array() -> None:
    target, recon = _volume_pair(8)
    with pytest.raises(ValueError, match=r"of one shape, got \(3, 24, 17\) and \(3, 24, 16\)"):
        volume_metrics(target, recon[:, :, :-1])
    with pytest.raises(ValueError, match=r"target and recon must be 3-D \(S, h, w\)"):
        volume_metrics(target[0], recon[0])
    with pytest.raises(TypeError, match="recon must be a real floating"):
        volume_metrics(target, recon.astype(np.complex64))
    with pytest.raises(ValueError, match="max_value"):
        volume_metrics(np.zeros_like(target), recon)
    with pytest.raises(ValueError, match="at least one"):
        mean_slice_ssim([])
