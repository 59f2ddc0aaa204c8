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
