"""The one call signature every reconstructor obeys, classical or learned."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Reconstructor(Protocol):
    """(masked k-space, mask, coil maps) -> magnitude image cropped to the target size.

    Attributes:
        name: short method name used in tables and file paths ("zero_filled", "tv", "unet").
        needs_sens_maps: whether ``sens_maps`` must be passed for multi-coil data.
    """

    name: str
    needs_sens_maps: bool

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """Reconstruct a batch of slices.

        Args:
            masked_kspace: complex64 (B, C, H, W), C = 1 for single-coil.
            mask: bool (B, W), the sampled columns.
            sens_maps: complex64 (B, C, H, W) or None.
            crop_size: (h, w) of the output.

        Returns:
            float32 (B, h, w) magnitude image.
        """
        ...


def check_inputs(
    masked_kspace: torch.Tensor, mask: torch.Tensor, sens_maps: torch.Tensor | None
) -> None:
    """Raise ValueError/TypeError naming the tensor if the contract's shapes do not hold."""
    if not masked_kspace.is_complex() or masked_kspace.ndim != 4:
        raise TypeError(
            "masked_kspace must be complex (B, C, H, W), got "
            f"{masked_kspace.dtype} {tuple(masked_kspace.shape)}"
        )
    b, _, _, w = masked_kspace.shape
    if mask.shape != (b, w):
        raise ValueError(
            f"mask must be (B, W) = {(b, w)}, got {tuple(mask.shape)} "
            f"for masked_kspace {tuple(masked_kspace.shape)}"
        )
    if sens_maps is not None and sens_maps.shape != masked_kspace.shape:
        raise ValueError(
            f"sens_maps shape {tuple(sens_maps.shape)} != masked_kspace shape "
            f"{tuple(masked_kspace.shape)}"
        )
