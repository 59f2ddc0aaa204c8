"""Centered orthonormal Fourier transforms on native complex tensors.

Same convention as ``fastmri.fft2c`` / ``fastmri.ifft2c`` (which work on a trailing
real/imaginary axis): ``ifftshift -> fft -> fftshift`` with ``norm="ortho"``, so the
transform is unitary and the DC sample sits at index ``n // 2`` of each axis. ``fft2c`` /
``ifft2c`` act on the last two axes (H, W); ``fftc`` / ``ifftc`` on the axes ``dim``.
"""

from __future__ import annotations

import torch

_DIMS = (-2, -1)


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D FFT, image -> k-space: complex (..., H, W), same dtype."""
    return fftc(image, _DIMS)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D inverse FFT, k-space -> image: complex (..., H, W), same dtype."""
    return ifftc(kspace, _DIMS)


def fftc(x: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Centered orthonormal FFT along ``dim`` (one axis or several); ``x`` complex, any shape."""
    x = torch.fft.ifftshift(x, dim=dim)
    return torch.fft.fftshift(torch.fft.fftn(x, dim=dim, norm="ortho"), dim=dim)


def ifftc(k: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Centered orthonormal inverse FFT along ``dim``; ``k`` complex, any shape."""
    k = torch.fft.ifftshift(k, dim=dim)
    return torch.fft.fftshift(torch.fft.ifftn(k, dim=dim, norm="ortho"), dim=dim)


def ifft2c_sampled_crop(
    kspace: torch.Tensor, mask: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """``center_crop(ifft2c(kspace * mask), shape)``, computed the cheap way.

    The inverse FFT along H runs on the columns any slice samples only, the rows are cropped
    to h, and the inverse FFT along W runs on the (h, W) result with the unsampled columns
    zero: exact (up to float rounding), since the transform is separable and unsampled
    columns contribute nothing. The centering shifts are folded into index arithmetic: the
    input ``ifftshift`` becomes a phase ramp (along H) or a rolled scatter (along W), the
    output ``fftshift`` + crop a gather of the kept rows or columns.

    Args:
        kspace: complex (..., H, W).
        mask: bool (W,), or bool broadcastable to ``kspace`` with size 1 along H (e.g.
            (B, 1, 1, W) for one mask per slice of (B, C, H, W) k-space).
        shape: (h, w) output crop, 0 < h <= H, 0 < w <= W (fastMRI's center offsets).

    Returns:
        complex (..., h, w), the dtype of ``kspace``.
    """
    (h, w), (height, width) = shape, kspace.shape[-2:]
    mask = mask.to(kspace.device)
    cols = mask.reshape(-1, width).any(dim=0).nonzero().squeeze(-1)  # (n,)
    # rows top..top+h of fftshift(z) are z[(top - H//2 + i) mod H]; same for columns
    rows = (torch.arange(h, device=kspace.device) + (height - h) // 2 - height // 2) % height
    keep = (torch.arange(w, device=kspace.device) + (width - w) // 2 - width // 2) % width
    # ifft(ifftshift(x))[r] = ifft(x)[r] * exp(-2 pi i (H//2) r / H)
    ramp = torch.exp(-2j * torch.pi * (height // 2) * rows.double() / height).to(kspace.dtype)
    sampled = kspace[..., cols] * mask[..., cols]  # (..., H, n) zero where a slice skips one
    sub = torch.fft.ifft(sampled, dim=-2, norm="ortho")  # (..., H, n)
    sub = sub[..., rows, :] * ramp[:, None]  # (..., h, n) the cropped rows
    full = kspace.new_zeros((*kspace.shape[:-2], h, width))  # (..., h, W), ifftshifted in W
    full[..., (cols - width // 2) % width] = sub
    return torch.fft.ifft(full, dim=-1, norm="ortho")[..., keep]  # (..., h, w)
