"""Training losses with one call: ``loss(terms)`` on the :class:`~mri_recon.contract.LossTerms`
a trainable returns (:class:`~mri_recon.contract.Loss`).

Both losses here compare the image terms, ``pred`` and ``ref`` (B, h, w) with ``data_range``
(B,) (L1 ignores it); they are plain ``nn.Module``s so a config builds them with ``_target_``.
A loss on k-space reads ``pred_kspace``, ``ref_kspace`` and ``kspace_mask`` instead.
"""

from __future__ import annotations

import fastmri.losses
import torch
from torch import nn
from torch.nn import functional as F

from mri_recon.checks import integer, positive
from mri_recon.contract import LossTerms


def _images(terms: LossTerms, min_size: int = 1) -> tuple[torch.Tensor, ...]:
    """``(pred, ref, data_range)`` of ``terms``, checked: (B, h, w) twice with h, w >=
    ``min_size``, and (B,)."""
    pred, ref, data_range = terms.pred, terms.ref, terms.data_range
    if (
        pred.ndim != 3
        or pred.shape != ref.shape
        or data_range.shape != pred.shape[:1]
        or min(pred.shape[-2:]) < min_size
    ):
        raise ValueError(
            f"loss: pred and ref must both be (B, h, w) with h, w >= {min_size} and "
            f"data_range (B,), got {tuple(pred.shape)}, {tuple(ref.shape)}, "
            f"{tuple(data_range.shape)}"
        )
    return pred, ref, data_range


class L1Loss(nn.Module):
    """Mean absolute error over all pixels of the batch (fastMRI's U-Net loss)."""

    def forward(self, terms: LossTerms) -> torch.Tensor:
        """Mean |pred - ref| of the float (B, h, w) images; ``data_range`` is unused."""
        pred, ref, _ = _images(terms)
        return F.l1_loss(pred, ref)


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
        if integer("win_size", win_size, 3) % 2 == 0:
            raise ValueError(f"win_size: must be an odd int >= 3, got {win_size!r}")
        super().__init__(win_size, positive("k1", k1), positive("k2", k2))
        self.register_buffer("w", self.w, persistent=False)

    def forward(self, terms: LossTerms) -> torch.Tensor:
        """1 - mean SSIM of float (B, h, w) ``pred`` (h, w >= win_size) against ``ref``, with
        the dynamic range L = ``data_range`` (B,) of each reference (e.g. its volume max): a
        float scalar in [0, 2], 0 iff the images agree (up to rounding)."""
        pred, ref, data_range = _images(terms, self.win_size)
        # (B, 1, h, w) images; L in their dtype so float32 training stays float32
        return super().forward(pred[:, None], ref[:, None], data_range.to(pred.dtype))


class SSDULoss(nn.Module):
    """SSDU's normalised l1-l2 loss in k-space (Yaman et al. 2020, eq. 9), on the points the
    trainable marks (``kspace_mask``: the loss set Lambda, which the network never saw):

        ||y - E x||_2 / ||y||_2 + ||y - E x||_1 / ||y||_1     over Lambda,

    per sample (over its coils and points; ``|.|_1`` sums complex magnitudes), then the mean
    over the samples (the K splits of a multi-mask step are samples too). The image terms
    are not read.

    Args:
        eps: guards the norms of an all-zero reference (a slice with no signal).
    """

    reads_kspace = True

    def __init__(self, eps: float = 1e-12) -> None:
        super().__init__()
        self.eps = positive("eps", eps)

    def forward(self, terms: LossTerms) -> torch.Tensor:
        """The mean over samples of the normalised l1 + l2 error on ``kspace_mask``: float scalar."""
        pred, ref, points = terms.pred_kspace, terms.ref_kspace, terms.kspace_mask
        if pred is None or ref is None or points is None or pred.shape != ref.shape:
            raise ValueError(
                "loss: SSDULoss needs pred_kspace and ref_kspace of one shape and kspace_mask "
                "(a trainable under training=ssdu returns them), got "
                f"{None if pred is None else tuple(pred.shape)}, "
                f"{None if ref is None else tuple(ref.shape)}, "
                f"{None if points is None else tuple(points.shape)}"
            )
        points = points.expand(ref.shape)  # (N, C, H, W)
        zero = torch.zeros((), dtype=ref.dtype, device=ref.device)
        diff = torch.where(points, pred - ref, zero).flatten(1)  # (N, C H W), 0 off the set
        y = torch.where(points, ref, zero).flatten(1)
        l2 = _norm2(diff, self.eps) / _norm2(y, self.eps)
        l1 = diff.abs().sum(1) / y.abs().sum(1).clamp_min(self.eps)
        return (l2 + l1).mean()


def _norm2(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-row 2-norm of complex (N, M), with a gradient at 0 (sqrt of the sum + eps^2)."""
    return torch.sqrt((x.real**2 + x.imag**2).sum(1) + eps**2)
