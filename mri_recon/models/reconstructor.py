"""A learned image-domain reconstructor: zero-filled magnitude -> image network -> image.

The pipeline is fastMRI's ``UnetDataTransform`` + ``UnetModule`` (Zbontar et al. 2018):
zero-filled magnitude cropped to the target size, per-slice normalisation
``(image - mean) / (std + eps)`` clamped to [-6, 6], the network, and the inverse map
``out * (std + eps) + mean`` back to the target's scale. It obeys both contracts of
:mod:`mri_recon.contract`: the evaluation loop runs it like any classical method, and
``ReconModule`` trains it like any other trainable.
"""

from __future__ import annotations

import torch
from torch import nn

from mri_recon.checks import number, positive
from mri_recon.contract import LossTerms, Trainable, TrainingBatch, check_inputs
from mri_recon.physics.zero_filled import zero_filled


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
        needs_kspace: False; it trains on the zero-filled image, wherever it was formed.
    """

    needs_sens_maps = False
    needs_kspace = False

    def __init__(
        self, net: nn.Module, name: str = "unet", eps: float = 1e-11, clamp: float = 6.0
    ) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.eps = number("eps", eps, 0)
        self.clamp = positive("clamp", clamp)

    def normalize(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-slice normalisation of the network input, as fastMRI's UnetDataTransform.

        Returns:
            ``(x, mean, std)`` of float ``image`` (B, h, w): x (B, h, w) = ``(image - mean) /
            std`` clamped; mean and std (B,) (the unbiased sample std plus ``eps``).
        """
        std, mean = torch.std_mean(image, dim=(-2, -1))  # (B,), (B,); unbiased as torch.std
        std = std + self.eps
        return self.normalize_like(image, mean, std), mean, std

    def normalize_like(
        self, image: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
    ) -> torch.Tensor:
        """Normalise ``image`` float (B, h, w) (e.g. the target) with another image's mean and
        std (B,) from :meth:`normalize`, clamped to [-clamp, clamp]."""
        x = (image - mean[:, None, None]) / std[:, None, None]
        return x.clamp(-self.clamp, self.clamp)

    def predict_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """The network on normalised images (or crops): float (B, h, w) -> (B, h, w)."""
        out = self.net(x.unsqueeze(1))  # (B, 1, h, w)
        if out.shape != (x.shape[0], 1, *x.shape[-2:]):
            raise ValueError(
                f"net output shape {tuple(out.shape)} != (B, 1, h, w) = "
                f"{(x.shape[0], 1, *x.shape[-2:])}"
            )
        return out.squeeze(1)

    @staticmethod
    def unnormalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Back to the target scale, ``x * std + mean``: float (B, h, w), mean and std (B,)."""
        return x * std[:, None, None] + mean[:, None, None]

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex64 (B, C, H, W), bool (B, W) -> float32 (B, h, w)
        on the target's scale; ``sens_maps`` is ignored (the input is the RSS zero-filled image)."""
        check_inputs(masked_kspace, mask, sens_maps, crop_size)
        x, mean, std = self.normalize(zero_filled(masked_kspace, mask, crop_size))
        out = self.unnormalize(self.predict_normalized(x), mean, std)
        return out.to(torch.float32)

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        """What the training loss compares (fastMRI's UnetModule): prediction and target in
        normalised units (the target normalised with the input's mean and std, clamped),
        ``data_range = max_value / std``; ``recon`` on the target's scale (uncropped only).
        The input is ``batch.zero_filled``, or the zero-filled image of
        ``batch.masked_kspace``; the crop, if any, cuts the same windows of input and target."""
        float32 = torch.autocast(batch.target.device.type, enabled=False)
        with float32:  # the physics and the statistics in float32 under any autocast
            zf = batch.zero_filled
            if zf is None:
                zf = zero_filled(batch.masked_kspace, batch.mask, batch.target.shape[-2:])
            x, mean, std = self.normalize(zf)  # (B, h, w), (B,), (B,)
            ref = self.normalize_like(batch.target, mean, std)
        if batch.crop is not None:
            x, ref = batch.crop.apply(x), batch.crop.apply(ref)  # (B, h', w')
        pred = self.predict_normalized(x).float()  # the network under the caller's autocast
        with float32:
            recon = None if batch.crop is not None else self.unnormalize(pred, mean, std)
        return LossTerms(pred, ref, batch.max_value.to(std.dtype) / std, recon)


def as_reconstructor(net: nn.Module) -> Trainable:
    """``net`` itself if it is a :class:`~mri_recon.contract.Trainable` (e.g.
    :class:`mri_recon.models.varnet.VarNet`), else an image network wrapped in
    :class:`ImageReconstructor`."""
    return net if isinstance(net, Trainable) else ImageReconstructor(net)
