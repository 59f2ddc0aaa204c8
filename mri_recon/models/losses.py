"""Training losses with one call: ``loss(pred (B, h, w), target (B, h, w), data_range (B,))``.

Both are plain ``nn.Module``s so a config builds them with ``_target_``; ``data_range`` is
passed to every loss (L1 ignores it) so the training step does not care which one it has.
"""

from __future__ import annotations

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
        """Mean |pred - target|.

        Args:
            pred: float (B, h, w).
            target: float (B, h, w).
            data_range: float (B,) or None; unused (kept for the common call).

        Returns:
            float scalar.
        """
        _check(pred, target, data_range)
        return F.l1_loss(pred, target)


class SSIMLoss(nn.Module):
    """1 - SSIM with a uniform window, as ``fastmri.losses.SSIMLoss`` (Wang et al. 2004).

    Local statistics over ``win_size x win_size`` valid windows (no padding) with the
    sample covariance (``NP / (NP - 1)``), ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with
    ``L = data_range`` per sample; the SSIM map is averaged over windows and the batch.
    This is scikit-image's ``structural_similarity`` with its defaults, computed in torch.

    Args:
        win_size: side of the uniform window (odd, >= 3).
        k1: luminance constant.
        k2: contrast constant.
    """

    def __init__(self, win_size: int = 7, k1: float = 0.01, k2: float = 0.03) -> None:
        super().__init__()
        if win_size < 3 or win_size % 2 == 0:
            raise ValueError(f"loss.win_size must be an odd int >= 3, got {win_size}")
        if not (k1 > 0 and k2 > 0):
            raise ValueError(f"loss.k1 and loss.k2 must be > 0, got {k1}, {k2}")
        self.win_size, self.k1, self.k2 = win_size, k1, k2
        num_points = win_size**2
        self.cov_norm = num_points / (num_points - 1)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor
    ) -> torch.Tensor:
        """1 - mean SSIM of ``pred`` against ``target``.

        Args:
            pred: float (B, h, w), h and w >= win_size.
            target: float (B, h, w).
            data_range: float (B,), the dynamic range L of each target (e.g. its volume max).

        Returns:
            float scalar in [0, 2]; 0 iff the images agree (up to rounding).
        """
        _check(pred, target, data_range)
        if min(pred.shape[-2:]) < self.win_size:
            raise ValueError(
                f"SSIMLoss: images {tuple(pred.shape)} smaller than win_size {self.win_size}"
            )
        x, y = pred.unsqueeze(1), target.unsqueeze(1)  # (B, 1, h, w)
        # built in the input dtype: a float32 1/49 would cost float64 inputs 1e-8 accuracy
        w = torch.full(
            (1, 1, self.win_size, self.win_size),
            1.0 / self.win_size**2,
            dtype=x.dtype,
            device=x.device,
        )
        big_l = data_range.to(x.dtype)[:, None, None, None]  # (B, 1, 1, 1)
        c1, c2 = (self.k1 * big_l) ** 2, (self.k2 * big_l) ** 2
        ux, uy = F.conv2d(x, w), F.conv2d(y, w)  # (B, 1, h - win + 1, w - win + 1)
        vx = self.cov_norm * (F.conv2d(x * x, w) - ux * ux)
        vy = self.cov_norm * (F.conv2d(y * y, w) - uy * uy)
        vxy = self.cov_norm * (F.conv2d(x * y, w) - ux * uy)
        ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
        return 1 - ssim_map.mean()
