"""Center cropping with fastMRI's semantics, and root-sum-of-squares coil combination."""

from __future__ import annotations

import torch


def crop_size_for(image_width: int, target_size: tuple[int, int]) -> tuple[int, int]:
    """The crop fastMRI applies to an image of width ``image_width``.

    fastMRI's ``UnetDataTransform`` crops to the target size, except when the image is
    narrower than the target (a few brain FLAIR volumes have W < 320): then it crops
    to ``(W, W)``.

    Args:
        image_width: W of the (uncropped) image, i.e. the k-space width.
        target_size: (h, w) of the target, usually (320, 320).

    Returns:
        (h, w) to crop to.
    """
    h, w = int(target_size[0]), int(target_size[1])
    if image_width < w:
        return (image_width, image_width)
    return (h, w)


def center_crop(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dims of ``x`` to ``shape`` around the center (fastMRI offsets).

    Args:
        x: tensor (..., H, W), real or complex.
        shape: (h, w) with 0 < h <= H and 0 < w <= W.

    Returns:
        tensor (..., h, w), a view of ``x``.
    """
    h, w = int(shape[0]), int(shape[1])
    if x.ndim < 2 or not (0 < h <= x.shape[-2] and 0 < w <= x.shape[-1]):
        raise ValueError(f"cannot center-crop a tensor of shape {tuple(x.shape)} to {(h, w)}")
    top = (x.shape[-2] - h) // 2
    left = (x.shape[-1] - w) // 2
    return x[..., top : top + h, left : left + w]


def rss(x: torch.Tensor, dim: int = -3) -> torch.Tensor:
    """Root-sum-of-squares over the coil axis: sqrt(sum_c |x_c|^2).

    Args:
        x: tensor (..., C, H, W), real or complex (coil axis ``dim``).
        dim: the coil axis.

    Returns:
        real tensor with ``dim`` removed, e.g. (..., H, W).
    """
    return torch.sqrt((x.abs() ** 2).sum(dim=dim))
