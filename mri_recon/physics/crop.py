"""Center cropping with fastMRI's semantics, the readout crop of k-space, and
root-sum-of-squares coil combination."""

from __future__ import annotations

import torch

from mri_recon.physics.fft import fftc, ifftc


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


def readout_rows(num_rows: int, crop_rows: int, margin: int = 0) -> tuple[int, int]:
    """The image rows ``[start, stop)`` of a readout crop: the centre ``crop_rows`` of
    ``num_rows`` (:func:`center_crop`'s offset) and up to ``margin`` more on each side."""
    top = (num_rows - crop_rows) // 2
    return max(0, top - margin), min(num_rows, top + crop_rows + margin)


def crop_readout(kspace: torch.Tensor, rows: tuple[int, int]) -> torch.Tensor:
    """k-space of the image rows ``[start, stop)`` only: the inverse FFT along the fully
    sampled readout H, the rows cut, the FFT back (a smaller field of view along H), complex
    (..., H, W) -> (..., stop - start, W). Exact for a fully sampled readout: the column mask
    acts on W only, so the data of the kept rows is unchanged."""
    start, stop = rows
    return fftc(ifftc(kspace, -2)[..., start:stop, :], -2)
