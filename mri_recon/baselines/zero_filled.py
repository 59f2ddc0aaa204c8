"""Zero-filled reconstruction, the reference every method is compared with."""

from __future__ import annotations

import torch

from mri_recon.contract import check_inputs
from mri_recon.physics.zero_filled import zero_filled


class ZeroFilled:
    """x = RSS_c |crop(F^H M y_c)|: :func:`mri_recon.physics.zero_filled.zero_filled` in the
    reconstructor contract."""

    name = "zero_filled"
    needs_sens_maps = False

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex (B, C, H, W), bool (B, W), ``sens_maps``
        ignored -> real (B, h, w), float32 for complex64 input."""
        check_inputs(masked_kspace, mask, None, crop_size)
        return zero_filled(masked_kspace, mask, crop_size)

    def __repr__(self) -> str:
        return "ZeroFilled()"
