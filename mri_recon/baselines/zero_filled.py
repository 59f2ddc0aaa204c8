"""Zero-filled reconstruction: the inverse FFT of the masked k-space, as fastMRI's
``UnetDataTransform`` computes its input image (without the normalisation)."""

from __future__ import annotations

import torch

from mri_recon.baselines.base import check_inputs
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c


def zero_filled(masked_kspace: torch.Tensor, crop_size: tuple[int, int]) -> torch.Tensor:
    """RSS over coils of the center-cropped IFFT: complex (B, C, H, W) -> real (B, h, w)."""
    image = center_crop(ifft2c(masked_kspace), crop_size)  # (B, C, h, w)
    return rss(image, dim=1).contiguous()  # (B, h, w)


class ZeroFilled:
    """x = RSS_c |crop(F^H y_c)|: IFFT, center crop, magnitude, root-sum-of-squares over coils.

    The crop comes before the coil combination, as in fastMRI (it commutes with the
    pixelwise magnitude and RSS, so the order only saves work).
    """

    name = "zero_filled"
    needs_sens_maps = False

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex (B, C, H, W), bool (B, W) (checked for shape
        only: the zeros are in the data), ``sens_maps`` ignored -> real (B, h, w), float32 for
        complex64 input."""
        check_inputs(masked_kspace, mask, None)
        return zero_filled(masked_kspace, crop_size)

    def __repr__(self) -> str:
        return "ZeroFilled()"
