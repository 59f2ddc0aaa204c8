"""A learned image-domain reconstructor: zero-filled magnitude -> image network -> image.

The pipeline is fastMRI's ``UnetDataTransform`` + ``UnetModule`` (Zbontar et al. 2018):
zero-filled magnitude cropped to the target size, per-slice normalisation
``(image - mean) / (std + eps)`` clamped to [-6, 6], the network, and the inverse map
``out * (std + eps) + mean`` back to the target's scale. It obeys the reconstructor
contract of :mod:`mri_recon.baselines.base`, so the evaluation loop runs it like any
classical method.
"""

from __future__ import annotations

import torch
from torch import nn

from mri_recon.baselines.base import check_inputs
from mri_recon.baselines.zero_filled import zero_filled


class ImageReconstructor(nn.Module):
    """(masked k-space, mask) -> magnitude image, through an image network ``net``.

    Args:
        net: image network mapping float (B, 1, h, w) to float (B, 1, h, w), e.g.
            :class:`mri_recon.models.unet.Unet`.
        name: method name used in tables and file paths.
        eps: added to the per-slice std (fastMRI's ``normalize_instance`` uses 1e-11).
        clamp: normalised images are clamped to [-clamp, clamp] (fastMRI: 6).

    Attributes:
        needs_sens_maps: False; coil images are combined by root-sum-of-squares.
    """

    needs_sens_maps = False

    def __init__(
        self, net: nn.Module, name: str = "unet", eps: float = 1e-11, clamp: float = 6.0
    ) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"ImageReconstructor: net must be an nn.Module, got {type(net)}")
        if not clamp > 0 or not eps >= 0:
            raise ValueError(f"ImageReconstructor: need clamp > 0 and eps >= 0, got {clamp}, {eps}")
        self.net = net
        self.name = name
        self.eps = float(eps)
        self.clamp = float(clamp)

    def zero_filled(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, crop_size: tuple[int, int]
    ) -> torch.Tensor:
        """The network input: the shared zero-filled baseline's magnitude image.

        Args:
            masked_kspace: complex64 (B, C, H, W).
            mask: bool (B, W).
            crop_size: (h, w) of the output.

        Returns:
            float32 (B, h, w): RSS over coils of the cropped IFFT.
        """
        return zero_filled(masked_kspace, crop_size)  # the mask's zeros are in the data

    def normalize(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-slice normalisation of the network input, as fastMRI's UnetDataTransform.

        Args:
            image: float (B, h, w).

        Returns:
            ``(x, mean, std)``: x float (B, h, w) = ``((image - mean) / std)`` clamped;
            mean (B,) and std (B,) (the sample std, unbiased, plus ``eps``: the divisor).
        """
        std, mean = torch.std_mean(image, dim=(-2, -1))  # (B,), (B,); unbiased as torch.std
        std = std + self.eps
        return self.normalize_like(image, mean, std), mean, std

    def normalize_like(
        self, image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """Normalise ``image`` (e.g. the target) with another image's statistics, clamped.

        Args:
            image: float (B, h, w).
            mean: float (B,), from :meth:`normalize`.
            std: float (B,), from :meth:`normalize`.

        Returns:
            float (B, h, w) in [-clamp, clamp].
        """
        x = (image - mean[:, None, None]) / std[:, None, None]
        return x.clamp(-self.clamp, self.clamp)

    def predict_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to normalised images.

        Args:
            x: float (B, h, w), normalised input (or a crop of it).

        Returns:
            float (B, h, w), the network output in normalised units.
        """
        out = self.net(x.unsqueeze(1))  # (B, 1, h, w)
        if out.shape != (x.shape[0], 1, *x.shape[-2:]):
            raise ValueError(
                f"net output shape {tuple(out.shape)} != (B, 1, h, w) = "
                f"{(x.shape[0], 1, *x.shape[-2:])}"
            )
        return out.squeeze(1)

    @staticmethod
    def unnormalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Map normalised images back to the target scale: ``x * std + mean``.

        Args:
            x: float (B, h, w).
            mean: float (B,).
            std: float (B,).

        Returns:
            float (B, h, w).
        """
        return x * std[:, None, None] + mean[:, None, None]

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """Reconstruct a batch of slices (the reconstructor contract).

        Args:
            masked_kspace: complex64 (B, C, H, W), C = 1 for single-coil.
            mask: bool (B, W), the sampled columns.
            sens_maps: ignored (may be None); the input is the RSS zero-filled image.
            crop_size: (h, w) of the output.

        Returns:
            float32 (B, h, w) magnitude image on the target's scale.
        """
        check_inputs(masked_kspace, mask, sens_maps)
        x, mean, std = self.normalize(self.zero_filled(masked_kspace, mask, crop_size))
        out = self.unnormalize(self.predict_normalized(x), mean, std)
        return out.to(torch.float32)
