"""Centered orthonormal FFT: round trip, Parseval, DC position, agreement with fastmri."""

from __future__ import annotations

import fastmri
import numpy as np
import pytest
import torch

from mri_recon.physics.crop import center_crop
from mri_recon.physics.fft import fft2c, fftc, ifft2c, ifft2c_sampled_crop, ifftc

SHAPES = [(2, 3, 10, 7), (1, 1, 9, 12)]  # non-square, even and odd sizes


def _randc(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip(shape: tuple[int, ...]) -> None:
    x = _randc(shape)
    torch.testing.assert_close(ifft2c(fft2c(x)), x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fft2c(ifft2c(x)), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_parseval(shape: tuple[int, ...]) -> None:
    x = _randc(shape, seed=1)
    for y in (fft2c(x), ifft2c(x)):
        torch.testing.assert_close(
            torch.linalg.vector_norm(y, dim=(-2, -1)), torch.linalg.vector_norm(x, dim=(-2, -1))
        )


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_fastmri(shape: tuple[int, ...]) -> None:
    x = _randc(shape, seed=2)
    ref_k = torch.view_as_complex(fastmri.fft2c(torch.view_as_real(x).contiguous()))
    ref_i = torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(x).contiguous()))
    torch.testing.assert_close(fft2c(x), ref_k, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ifft2c(x), ref_i, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dim", [-1, -2, 1])
def test_1d_transforms_match_numpy_and_compose_to_fastmri(shape, dim) -> None:
    x = _randc(shape, seed=3)
    a = np.fft.ifftshift(x.numpy(), axes=dim)
    ref_k = np.fft.fftshift(np.fft.fft(a, axis=dim, norm="ortho"), axes=dim)
    ref_i = np.fft.fftshift(np.fft.ifft(a, axis=dim, norm="ortho"), axes=dim)
    torch.testing.assert_close(fftc(x, dim), torch.from_numpy(ref_k), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ifftc(x, dim), torch.from_numpy(ref_i), rtol=1e-5, atol=1e-6)
    # one axis after the other is fastMRI's 2-D transform (the TV solver's hybrid domain)
    ref_2d = torch.view_as_complex(fastmri.fft2c(torch.view_as_real(x).contiguous()))
    torch.testing.assert_close(fftc(fftc(x, -1), -2), ref_2d, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ifftc(fftc(x, -1), -1), x, rtol=1e-5, atol=1e-6)


def test_dc_at_center() -> None:
    h, w = 6, 5
    k = fft2c(torch.ones(h, w, dtype=torch.complex64))
    assert k.abs().argmax().item() == (h // 2) * w + w // 2
    torch.testing.assert_close(k[h // 2, w // 2].abs(), torch.tensor((h * w) ** 0.5))


def test_keeps_complex128() -> None:
    x = _randc((4, 6)).to(torch.complex128)
    assert fft2c(x).dtype == torch.complex128
    torch.testing.assert_close(ifft2c(fft2c(x)), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "crop"), [((2, 3, 11, 9), (6, 4)), ((1, 1, 12, 16), (7, 11)), ((5, 6), (5, 6))]
)
def test_ifft2c_sampled_crop_equals_full_ifft2c_then_crop(shape, crop) -> None:
    kspace = _randc(shape, seed=3)
    mask = torch.rand(shape[-1], generator=torch.Generator().manual_seed(1)) < 0.4
    mask[shape[-1] // 2] = True
    expected = center_crop(ifft2c(kspace * mask), crop)
    got = ifft2c_sampled_crop(kspace, mask, crop)
    assert got.shape == expected.shape and got.dtype == kspace.dtype
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("shape", "crop"), [((3, 2, 14, 11), (9, 7)), ((2, 1, 9, 13), (9, 13))])
def test_sampled_crop_takes_one_mask_per_slice(shape, crop) -> None:
    """(B, 1, 1, W) masks that differ per slice (a column one slice skips, another samples):
    still ``center_crop(ifft2c(kspace * mask))``."""
    kspace = _randc(shape, seed=5)
    mask = torch.rand(shape[0], shape[-1], generator=torch.Generator().manual_seed(2)) < 0.5
    mask[0] = False
    mask[0, shape[-1] // 2] = True  # one slice samples a single column
    mask4 = mask[:, None, None, :]
    got = ifft2c_sampled_crop(kspace, mask4, crop)
    torch.testing.assert_close(got, center_crop(ifft2c(kspace * mask4), crop), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("shape", "crop"), [((2, 3, 15, 11), (8, 7)), ((3, 1, 12, 9), (12, 9))])
def test_zero_filled_is_fastmris_rss_of_the_cropped_ifft(shape, crop) -> None:
    """The one zero-filled function (its implementation the sampled-columns fast path) against
    fastMRI's own ifft2c, complex_center_crop, complex_abs and rss, on non-square, odd-width
    k-space with values in the unsampled columns (the mask, not the data, drops them)."""
    from fastmri.data.transforms import complex_center_crop

    from mri_recon.physics.zero_filled import zero_filled

    kspace = _randc(shape, seed=7)
    mask = torch.rand(shape[0], shape[-1], generator=torch.Generator().manual_seed(4)) < 0.4
    mask[:, shape[-1] // 2] = True
    got = zero_filled(kspace, mask, crop)
    masked = torch.view_as_real(kspace * mask[:, None, None, :])  # (B, C, H, W, 2)
    image = complex_center_crop(fastmri.ifft2c(masked), crop)
    expected = fastmri.rss(fastmri.complex_abs(image), dim=1)
    assert got.shape == (shape[0], *crop) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
