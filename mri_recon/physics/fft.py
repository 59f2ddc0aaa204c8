"""Centered orthonormal 2-D Fourier transforms on native complex tensors.

Same convention as ``fastmri.fft2c`` / ``fastmri.ifft2c`` (which work on a trailing
real/imaginary axis): ``ifftshift -> fft -> fftshift`` over the last two axes with
``norm="ortho"``, so the transform is unitary and the DC sample sits at index
``(H // 2, W // 2)``.
"""

from __future__ import annotations

import torch

_DIMS = (-2, -1)


def _check_complex(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_complex():
        raise TypeError(f"{name} must be complex, got dtype {x.dtype} with shape {tuple(x.shape)}")
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have at least 2 dims (..., H, W), got shape {tuple(x.shape)}"
        )


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D FFT: image -> k-space.

    Args:
        image: complex tensor (..., H, W).

    Returns:
        complex tensor (..., H, W), same dtype.
    """
    _check_complex("image", image)
    x = torch.fft.ifftshift(image, dim=_DIMS)
    x = torch.fft.fft2(x, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(x, dim=_DIMS)


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Centered orthonormal 2-D inverse FFT: k-space -> image.

    Args:
        kspace: complex tensor (..., H, W).

    Returns:
        complex tensor (..., H, W), same dtype.
    """
    _check_complex("kspace", kspace)
    x = torch.fft.ifftshift(kspace, dim=_DIMS)
    x = torch.fft.ifft2(x, dim=_DIMS, norm="ortho")
    return torch.fft.fftshift(x, dim=_DIMS)
