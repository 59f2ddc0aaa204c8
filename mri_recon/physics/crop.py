"""Center cropping with fastMRI's semantics, and root-sum-of-squares coil combination."""

from __future__ import annotations

import torch


def crop_size_for(image_width: int, target_size: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) crop fastMRI's ``UnetDataTransform`` applies to an image (k-space) of width
    ``image_width``: ``target_size`` (h, w), except that an image narrower than the target
    (a few brain FLAIR volumes have W < 320) is cropped to ``(W, W)``."""
    h, w = int(target_size[0]), int(target_size[1])
    if image_width < w:
        return (image_width, image_width)
    return (h, w)


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``x`` (..., H, W), real or complex, to ``shape`` (h, w),
    0 < h <= H and 0 < w <= W, around the center (fastMRI offsets): a view (..., h, w)."""
    h, w = int(shape[0]), int(shape[1])
    if x.ndim < 2 or not (0 < h <= x.shape[-2] and 0 < w <= x.shape[-1]):
        raise ValueError(f"cannot center-crop a tensor of shape {tuple(x.shape)} to {(h, w)}")
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def rss(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares over the coil axis ``dim``, sqrt(sum_c |x_c|^2): real or complex
    (..., C, H, W) -> real (..., H, W)."""
    return torch.sqrt((x.abs() ** 2).sum(dim=dim))
