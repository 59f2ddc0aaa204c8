"""Training losses with one call: ``loss(pred (B, h, w), target (B, h, w), data_range (B,))``.

Both are plain ``nn.Module``s so a config builds them with ``_target_``; ``data_range`` is
passed to every loss (L1 ignores it) so the training step does not care which one it has.
"""

from __future__ import annotations

import fastmri.losses
import torch
from torch import nn
from torch.nn import functional as F


def _check(pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor | None) -> None:
    if pred.ndim != 3 or pred.shape != target.shape:
        raise ValueError(
            f"loss: pred and target must both be (B, h, w), got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if data_range is not None and data_range.shape != (pred.shape[0],):
        raise ValueError(
            f"loss: data_range must be (B,) = ({pred.shape[0]},), got {tuple(data_range.shape)}"
        )


class L1Loss(nn.Module):
    """Mean absolute error over all pixels of the batch (fastMRI's U-Net loss)."""

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean |pred - target| of float (B, h, w) images; ``data_range`` (B,) is unused."""
        _check(pred, target, data_range)
        return F.l1_loss(pred, target)


class SSIMLoss(fastmri.losses.SSIMLoss):
    """1 - SSIM with a uniform window: ``fastmri.losses.SSIMLoss`` (Wang et al. 2004) on
    (B, h, w) images.

    scikit-image's ``structural_similarity`` with its defaults, in torch: valid
    ``win_size x win_size`` windows, sample covariance, ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``
    with ``L = data_range`` per sample, averaged over windows and the batch. The window is a
    non-persistent buffer (nothing in checkpoints) in the module's dtype: ``.double()`` the
    loss for float64 images.

    Args:
        win_size: side of the uniform window (odd, >= 3).
        k1: luminance constant.
        k2: contrast constant.
    """

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> None:
        if win_size < 3 or win_size % 2 == 0:
            raise ValueError(f"loss.win_size must be an odd int >= 3, got {win_size}")
        if not (k1 > 0 and k2 > 0):
            raise ValueError(f"loss.k1 and loss.k2 must be > 0, got {k1}, {k2}")
        super().__init__(win_size, k1, k2)
        self.register_buffer("w", self.w, persistent=False)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor
    ) -> torch.Tensor:
        """1 - mean SSIM of float (B, h, w) ``pred`` (h, w >= win_size) against ``target``, with
        the dynamic range L = ``data_range`` (B,) of each target (e.g. its volume max): a float
        scalar in [0, 2], 0 iff the images agree (up to rounding)."""
        _check(pred, target, data_range)
        if min(pred.shape[-2:]) < self.win_size:
            raise ValueError(
                f"SSIMLoss: images {tuple(pred.shape)} smaller than win_size {self.win_size}"
            )
        # (B, 1, h, w) images; L in their dtype so float32 training stays float32
        return super().forward(pred[:, None], target[:, None], data_range.to(pred.dtype))
