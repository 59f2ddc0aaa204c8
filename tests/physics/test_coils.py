"""Coil maps from the ACS and ESPIRiT: normalisation, agreement with the true maps (and with
BART's ecalib where it is installed), ACS-only, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mri_recon.baselines.bart import bart_available, run_bart_ecalib
from mri_recon.data.synthetic.fields import Canvas
from mri_recon.data.synthetic.phantoms import draw_knee
from mri_recon.data.synthetic.volume import coil_maps, image_phase
from mri_recon.physics.coils import (
    CoilMaps,
    _eigen_maps,
    _gram_at,
    acs_window,
    espirit_maps,
    estimate_sens_maps,
)
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, center_band
from mri_recon.physics.operators import SenseOperator

H, W, C = 56, 44, 4  # non-square


def _scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image (H, W) complex: an ellipse with inner structure and a smooth phase; smooth coil
    maps (C, H, W) centered around the field of view; fully sampled k-space (1, C, H, W)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    obj = ((yy / 0.8) ** 2 + (xx / 0.7) ** 2 < 1).float()
    obj = obj + 0.5 * ((yy / 0.3) ** 2 + ((xx - 0.2) / 0.2) ** 2 < 1).float()
    image = obj * torch.exp(1j * (0.7 * xx + 0.4 * yy))
    maps = []
    for c in range(C):
        a = 2 * math.pi * c / C
        amp = torch.exp(-((yy - math.cos(a)) ** 2 + (xx - math.sin(a)) ** 2) / 1.5)
        maps.append(amp * torch.exp(1j * (a + 0.3 * xx)))
    sens = torch.stack(maps).to(torch.complex64)
    kspace = fft2c((sens * image).to(torch.complex64))[None]
    return image.to(torch.complex64), sens, kspace


def _mask(seed: int = 0, r: int = 4, cf: float = 0.16) -> torch.Tensor:
    return ColumnMaskFunc("random", [cf], [r])(W, seed=seed).mask[None]


def test_normalised_inside_zero_outside() -> None:
    image, _, kspace = _scene()
    mask = _mask()
    maps = estimate_sens_maps(kspace * mask[:, None, None, :], mask, threshold=0.05)
    assert maps.shape == (1, C, H, W) and maps.dtype == torch.complex64
    energy = (maps.abs() ** 2).sum(dim=1)[0]
    inside = energy > 0.5
    torch.testing.assert_close(energy[inside], torch.ones_like(energy[inside]))
    assert bool((energy[~inside] == 0).all()) and (~inside).any()
    assert inside[image.abs() > 0].float().mean() > 0.99  # the object is covered


def test_default_threshold_normalises_the_whole_field_of_view() -> None:
    _, _, kspace = _scene()
    mask = _mask()
    energy = (estimate_sens_maps(kspace * mask[:, None, None, :], mask).abs() ** 2).sum(dim=1)
    torch.testing.assert_close(energy, torch.ones_like(energy))


def test_agrees_with_true_maps_inside_the_object() -> None:
    image, sens, kspace = _scene()
    mask = _mask(cf=0.2)
    maps = estimate_sens_maps(kspace * mask[:, None, None, :], mask)[0]
    true = sens / torch.sqrt((sens.abs() ** 2).sum(dim=0, keepdim=True))
    core = (image.abs() > 0).clone()
    core[:, : W // 4] = core[:, -W // 4 :] = False  # away from edges (windowing blurs them)
    core[: H // 4] = core[-H // 4 :] = False
    mag_err = (maps.abs() - true.abs())[:, core].abs().max().item()
    assert mag_err < 0.08
    # The estimate carries the image phase; phases relative to coil 0 must match.
    rel = maps * maps[:1].conj()
    rel_true = true * true[:1].conj()
    assert (rel - rel_true)[:, core].abs().max().item() < 0.08


def test_full_sampling_normal_operator_is_identity_inside() -> None:
    _, _, kspace = _scene()
    mask = _mask()
    maps = estimate_sens_maps(kspace * mask[:, None, None, :], mask)
    op = SenseOperator(maps, torch.ones(1, W, dtype=torch.bool))
    x = torch.randn(1, H, W, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    inside = (maps.abs() ** 2).sum(dim=1) > 0.5
    torch.testing.assert_close(op.normal(x)[inside], x[inside], rtol=1e-4, atol=1e-4)


def test_uses_only_the_acs() -> None:
    _, _, kspace = _scene()
    mask = _mask()
    y = kspace * mask[:, None, None, :]
    start, stop = center_band(mask[0])
    noisy = y.clone()
    noisy[..., :start] += 5.0
    noisy[..., stop:] -= 3.0j
    torch.testing.assert_close(estimate_sens_maps(noisy, mask), estimate_sens_maps(y, mask))
    win = acs_window(mask, H, torch.float32)
    assert win.shape == (1, 1, H, W)
    assert bool((win[..., :start] == 0).all()) and bool((win[..., stop:] == 0).all())
    assert bool((win[0, 0, H // 2, start:stop] > 0).all())
    # one Hann window per axis: over the band's columns, over the band's physical width of
    # rows centred on the DC row H // 2 (symmetric about it for an odd number of rows)
    n_acs, n_rows = stop - start, round((stop - start) * H / W)
    hann = torch.sin(torch.pi * torch.arange(1, n_acs + 1) / (n_acs + 1)) ** 2
    torch.testing.assert_close(win[0, 0, H // 2, start:stop], hann / hann.max())
    rows = win[0, 0, :, start:stop].amax(dim=1)
    assert (rows > 0).nonzero().flatten().tolist() == list(
        range(H // 2 - n_rows // 2, H // 2 - n_rows // 2 + n_rows)
    )


def test_batch_uses_each_slice_mask() -> None:
    _, _, kspace = _scene()
    masks = torch.cat([_mask(0, cf=0.16), _mask(1, r=8, cf=0.08)])
    y = kspace.expand(2, -1, -1, -1) * masks[:, None, None, :]
    both = estimate_sens_maps(y, masks)
    for b in range(2):
        torch.testing.assert_close(
            both[b : b + 1], estimate_sens_maps(y[b : b + 1], masks[b : b + 1])
        )
    assert not torch.allclose(both[0], both[1])


def test_scale_invariant_and_single_coil_ones() -> None:
    _, _, kspace = _scene()
    mask = _mask()
    y = kspace * mask[:, None, None, :]
    for th in (0.0, 0.05):  # float32 rounding where the low-resolution RSS is tiny
        a, b = estimate_sens_maps(7.5 * y, mask, th), estimate_sens_maps(y, mask, th)
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    ones = estimate_sens_maps(y[:, :1], mask)
    assert ones.shape == (1, 1, H, W) and bool((ones == 1).all())


def test_errors_name_the_input() -> None:
    _, _, kspace = _scene()
    mask = _mask()
    no_center = mask.clone()
    no_center[0, W // 2] = False
    with pytest.raises(ValueError, match=r"mask\[0\] has 0 fully sampled center columns"):
        estimate_sens_maps(kspace, no_center)
    with pytest.raises(ValueError, match="mask must be"):
        estimate_sens_maps(kspace, mask[:, 1:])
    with pytest.raises(TypeError, match="masked_kspace must be a complex"):
        estimate_sens_maps(kspace.abs(), mask)
    with pytest.raises(ValueError, match="threshold"):
        estimate_sens_maps(kspace, mask, threshold=1.0)


def _knee(seed: int = 1, num_coils: int = 8, noise: float = 0.01):
    """The synthetic generator's knee (one slice, 128 x 76): its true maps complex (C, h, w)
    normalised over coils, object mask bool (h, w) and noisy k-space complex (1, C, h, w)."""
    rng = np.random.default_rng(seed)
    canvas = Canvas(128, 76, 32, np.array([0.1], dtype=np.float32))
    magnitude, support = draw_knee(rng, canvas, "SYNTH_PD")
    image = magnitude * np.exp(1j * image_phase(rng, canvas))
    sens = torch.from_numpy(coil_maps(rng, canvas, num_coils, support)[0])
    kspace = fft2c(torch.from_numpy((image[:, None] * sens.numpy()).astype(np.complex64)))
    g = torch.Generator().manual_seed(seed)
    kspace = kspace + noise * kspace.abs().max() * torch.randn(kspace.shape, generator=g)
    sens = sens / (sens.abs() ** 2).sum(dim=0).sqrt()
    return sens, torch.from_numpy(support[0] > 0.5), kspace


def _agreement(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|<a, b>| over coils per pixel, (C, h, w) x2 -> (h, w): 1 where they are equal up to a
    per-pixel phase (both of unit norm)."""
    return (a.conj() * b).sum(dim=0).abs()


@pytest.mark.parametrize("cf", [0.08, 0.16])
def test_espirit_matches_the_true_coil_maps_inside_the_object(cf) -> None:
    sens, inside, kspace = _knee()
    mask = ColumnMaskFunc("random", [cf], [4])(76, seed=0).mask[None]
    maps = espirit_maps(kspace * mask[:, None, None, :], mask)  # kernel 3 and 6
    assert maps.shape == kspace.shape and maps.dtype == torch.complex64
    energy = (maps[0].abs() ** 2).sum(dim=0)
    assert bool(((energy - 1).abs() < 1e-4)[inside].all())  # unit norm, not cropped inside
    assert energy[~inside].lt(0.5).float().mean() > 0.5  # cropped in most of the background
    # after removing the common phase: |<s_hat, s>| >= 0.95 at every pixel of the object
    assert _agreement(maps[0], sens)[inside].min() >= 0.95
    assert torch.allclose(maps[0, 0][inside].angle(), torch.zeros(()), atol=1e-5)  # coil 0 real


def test_espirit_beats_acs_where_the_acs_is_narrow() -> None:
    sens, inside, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.08], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    espirit = _agreement(espirit_maps(y, mask)[0], sens)[inside]
    acs = _agreement(estimate_sens_maps(y, mask)[0], sens)[inside]
    assert espirit.min() > acs.min() and espirit.mean() > acs.mean()


def test_espirit_gram_equals_the_sum_over_kernel_images() -> None:
    """The per-pixel C x C matrices built from the kernels' correlations equal the direct
    sum over every zero-padded, inverse-transformed kernel g_n of g_n g_n^H."""
    g = torch.Generator().manual_seed(0)
    k, c, h, w = 3, 4, 12, 10
    kernels = torch.randn((5, c, k, k), dtype=torch.complex128, generator=g)
    padded = torch.zeros((5, c, h, w), dtype=torch.complex128)
    padded[..., h // 2 - k // 2 : h // 2 - k // 2 + k, w // 2 - k // 2 : w // 2 - k // 2 + k] = (
        kernels
    )
    images = ifft2c(padded) * (h * w) ** 0.5 / k  # (N, C, H, W)
    gram = torch.einsum("nchw,ndhw->hwcd", images, images.conj())
    values, vectors = torch.linalg.eigh(gram)
    top = vectors[..., -1].permute(2, 0, 1)  # (C, H, W)
    maps = _eigen_maps(kernels, (h, w), crop=0.0)
    torch.testing.assert_close(_agreement(maps, top), torch.ones(h, w, dtype=torch.float64))
    cropped = _eigen_maps(kernels, (h, w), crop=float(values[..., -1].median()) / 1e3)
    assert bool(
        (cropped == 0).all(dim=0).eq(values[..., -1] <= values[..., -1].median() / 1e3).all()
    )


def test_espirit_batch_uses_each_slice_mask_and_single_coil_is_ones() -> None:
    _, _, kspace = _knee()
    masks = torch.cat(
        [
            ColumnMaskFunc("random", [cf], [4])(76, seed=s).mask[None]
            for s, cf in ((0, 0.16), (1, 0.2))
        ]
    )
    y = kspace.expand(2, -1, -1, -1) * masks[:, None, None, :]
    both = espirit_maps(y, masks)
    for b in range(2):
        torch.testing.assert_close(both[b : b + 1], espirit_maps(y[b : b + 1], masks[b : b + 1]))
    assert not torch.allclose(both[0], both[1])
    ones = espirit_maps(y[:, :1], masks)
    assert bool((ones == 1).all())


def test_coil_maps_dispatches_on_the_method() -> None:
    _, _, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.16], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    torch.testing.assert_close(CoilMaps("acs")(y, mask), estimate_sens_maps(y, mask))
    torch.testing.assert_close(
        CoilMaps("espirit", kernel_size=5, crop=0.5)(y, mask),
        espirit_maps(y, mask, kernel_size=5, crop=0.5),
    )
    with pytest.raises(
        ValueError, match=r"^method: must be one of acs, espirit, auto, got 'sense'"
    ):
        CoilMaps("sense")
    with pytest.raises(ValueError, match=r"^min_columns: must be"):
        CoilMaps("auto", min_columns=0)


def test_auto_maps_choose_per_slice_by_the_width_of_the_centre_band() -> None:
    """``auto``: the ACS ratio for a slice whose centre band has >= min_columns columns,
    ESPIRiT (with the node's settings) for a narrower one, each slice of a batch on its own."""
    _, _, kspace = _knee()
    masks = torch.cat(
        [
            ColumnMaskFunc("equispaced", [cf], [4])(76, seed=0).mask[None]
            for cf in (0.08, 0.2)  # 6 and 15 centre columns
        ]
    )
    widths = [int(stop - start) for start, stop in (center_band(m) for m in masks)]
    assert widths[0] < 10 <= widths[1]
    y = kspace.expand(2, -1, -1, -1) * masks[:, None, None, :]
    both = CoilMaps("auto", crop=0.0, min_columns=10)(y, masks)
    torch.testing.assert_close(both[:1], espirit_maps(y[:1], masks[:1], crop=0.0))
    torch.testing.assert_close(both[1:], estimate_sens_maps(y[1:], masks[1:]))
    wide = CoilMaps("auto", min_columns=min(widths))(y, masks)  # both wide enough: the ratio
    torch.testing.assert_close(wide, estimate_sens_maps(y, masks))


def test_espirit_calibration_larger_than_the_sampled_centre_names_the_field() -> None:
    _, _, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.08], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    start, stop = center_band(mask[0])
    n = stop - start
    with pytest.raises(
        ValueError, match=rf"^calib_size: {n + 1} calibration columns do not fit in the {n} "
    ):
        espirit_maps(y, mask, calib_size=n + 1)
    with pytest.raises(ValueError, match=rf"^kernel_size: a 5x5 kernel does not fit in the {n}"):
        espirit_maps(y, mask, kernel_size=5, calib_size=4)
    espirit_maps(y, mask, kernel_size=n, calib_size=n)  # fits exactly
    # a kernel as wide as the band has one position per row: every map is cropped away
    # (hence the default kernel of min(6, columns // 2))
    cropped = espirit_maps(y, mask, kernel_size=n)
    assert (cropped.abs() ** 2).sum(dim=1).gt(0.5).float().mean() < 0.05
    for field, kwargs, interval in (
        ("threshold", {"threshold": 1.0}, r"\(0, 1\)"),  # 0: no signal subspace (issue 21)
        ("crop", {"crop": -0.1}, r"\[0, 1\)"),
    ):
        with pytest.raises(ValueError, match=rf"^{field}: must be a number in {interval}"):
            espirit_maps(y, mask, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_espirit_on_gpu_equals_cpu() -> None:
    _, _, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.16], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    cpu = espirit_maps(y, mask, crop=0.0)
    gpu = espirit_maps(y.cuda(), mask.cuda(), crop=0.0)
    assert gpu.device.type == "cuda"
    assert _agreement(gpu[0].cpu(), cpu[0]).min() > 0.999


@pytest.mark.skipif(not bart_available(), reason="bart is not installed")
def test_espirit_equals_bart_ecalib_up_to_a_per_pixel_phase() -> None:
    """Uncropped (BART scales its eigenvalues differently, so crops differ near edges)."""
    _, inside, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.16], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    ours = espirit_maps(y, mask, kernel_size=6, crop=0.0)[0]
    bart = torch.from_numpy(run_bart_ecalib(y[0].numpy(), kernel_size=6, crop=0.0).image)
    agreement = _agreement(ours, bart)[inside]
    assert agreement.min() > 0.97 and agreement.mean() > 0.995


def test_espirit_on_a_coarse_grid_equals_the_full_resolution_maps() -> None:
    """Issue 20: the eigen-decomposition on every 4th pixel, maps interpolated, gives the
    full-resolution maps (eigen_step=1, the method before) inside the object, the same
    support, and unit norm there; it is the default."""
    _, inside, kspace = _knee()
    mask = ColumnMaskFunc("random", [0.16], [4])(76, seed=0).mask[None]
    y = kspace * mask[:, None, None, :]
    full = espirit_maps(y, mask, eigen_step=1)[0]
    coarse = espirit_maps(y, mask)[0]
    torch.testing.assert_close(coarse, espirit_maps(y, mask, eigen_step=4)[0])
    agreement = _agreement(coarse, full)[inside]
    assert agreement.mean() > 0.999 and agreement.min() > 0.99
    support = (full.abs() ** 2).sum(0) > 0.5, (coarse.abs() ** 2).sum(0) > 0.5
    assert (support[0] ^ support[1]).float().mean() < 0.02  # the crops differ at the edge only
    energy = (coarse.abs() ** 2).sum(dim=0)
    assert bool(((energy - 1).abs() < 1e-4)[support[1]].all())
    assert torch.allclose(coarse[0][support[1]].angle(), torch.zeros(()), atol=1e-5)
    with pytest.raises(ValueError, match=r"^eigen_step: must be"):
        CoilMaps("espirit", eigen_step=0)


def test_espirit_gram_is_exact_off_the_grid() -> None:
    """The Gram's trigonometric polynomial evaluated at pixel positions equals ifft2c of the
    zero-padded lags (the previous construction), so the coarse grid samples it exactly."""
    g = torch.Generator().manual_seed(1)
    c, k, h, w = 3, 3, 14, 11
    corr = torch.randn((c, c, 2 * k - 1, 2 * k - 1), dtype=torch.complex128, generator=g)
    grid = corr.new_zeros((c, c, h, w))
    grid[..., h // 2 - k + 1 : h // 2 + k, w // 2 - k + 1 : w // 2 + k] = corr
    expected = (ifft2c(grid) * (h * w) ** 0.5 / k**2).permute(2, 3, 0, 1)
    rows, cols = torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64)
    torch.testing.assert_close(_gram_at(corr, (h, w), rows, cols), expected)
    # a fractional position: the polynomial, between its grid values
    mid = _gram_at(corr, (h, w), rows[2:3] + 0.5, cols[:1])[0, 0]
    assert not torch.allclose(mid, expected[2, 0]) and not torch.allclose(mid, expected[3, 0])
