"""Coil maps from the ACS: normalisation, agreement with the true maps, ACS-only, errors."""

from __future__ import annotations

import math

import pytest
import torch

from mri_recon.physics.coils import acs_window, estimate_sens_maps
from mri_recon.physics.fft import fft2c
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
