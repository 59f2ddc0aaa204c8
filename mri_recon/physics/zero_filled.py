"""The zero-filled image: the one function every layer forms it with (the zero-filled
baseline, an image network's input, the data workers under ``data.transform=worker``, the
images logged in validation), as fastMRI's ``UnetDataTransform`` forms its input (without the
normalisation)."""

from __future__ import annotations

import torch

from mri_recon.physics.crop import rss
from mri_recon.physics.fft import ifft2c_sampled_crop


def zero_filled(
    masked_kspace: torch.Tensor, mask: torch.Tensor, crop_size: tuple[int, int]
) -> torch.Tensor:
    """x = RSS_c |crop(F^H M y_c)|: the center-cropped inverse FFT of the sampled columns,
    combined over coils by root-sum-of-squares.

    The crop comes before the coil combination, as in fastMRI (it commutes with the pixelwise
    magnitude and RSS). Computed by :func:`ifft2c_sampled_crop` (the inverse FFT along H of
    the sampled columns only, then along W of the cropped rows).

    Args:
        masked_kspace: complex (B, C, H, W).
        mask: bool (B, W) the sampled columns.
        crop_size: (h, w), 0 < h <= H, 0 < w <= W.

    Returns:
        real (B, h, w), float32 for complex64 input, contiguous.
    """
    image = ifft2c_sampled_crop(masked_kspace, mask[:, None, None, :], crop_size)  # (B, C, h, w)
    return rss(image, dim=1)  # (B, h, w)
