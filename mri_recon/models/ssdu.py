"""SSDU: self-supervised training of a physics-guided network without fully sampled data.

Yaman, Hosseini, Moeller, Ellermann, Ugurbil, Akcakaya, "Self-supervised learning of
physics-guided reconstruction neural networks without fully sampled reference data", Magn.
Reson. Med. 84(6), 2020; the multi-mask variant: Yaman et al., "Multi-mask self-supervised
learning for physics-guided neural networks in highly accelerated MRI", NMR Biomed. 2022.

:class:`SSDU` makes any trainable with data consistency that takes points
(:class:`~mri_recon.contract.DataConsistent`: the VarNet, MoDL) train without a target. In
each training step every slice's acquired points are split (:class:`SSDUSplit`) into Theta,
the only points the network's data consistency sees, and the disjoint loss set Lambda; the
loss (``models.losses.SSDULoss``) compares the k-space of the network's estimate with the
measurement on Lambda. With ``num_splits`` K > 1 each slice is split K times (K independent
draws, each disjoint within itself) and the K (Theta, Lambda) pairs are K samples of the step.
The split of split k of a sample is seeded by ``split_seed(batch.sample_seed, k)``: a fresh
split per (run seed, epoch, slice), reproducible, recorded through the sample's mask seed.

At inference nothing changes: the network runs on all acquired points (the reconstructor
contract). Validation reconstructs every slice that way (the metrics score it against the
target) and reports the loss on one fixed split per (file, slice) as ``val/loss``.

The wrapper is a *view* of the network: it shares the network's parameters, buffers and
submodules (no ``net.`` prefix), so a checkpoint trained under SSDU is the network's own
checkpoint: ``mri-recon-eval``, the robustness grid, replay and export load it unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from mri_recon.checks import positive_int
from mri_recon.contract import DataConsistent, LossTerms, TrainingBatch
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.ssdu import SSDUSplit, split_seed


class SSDU(nn.Module):
    """A trainable with data consistency, trained by SSDU (see the module docstring).

    Args:
        net: the network, a :class:`~mri_recon.contract.DataConsistent` trainable.
        rho: ``|loss set| / |acquired points|``, in (0, 1) (the paper's 0.4).
        num_splits: K, splits of each slice per step (multi-mask SSDU; 1 is the paper's).
        selection: ``gaussian`` (the paper's, around the k-space centre) or ``uniform``.

    Attributes:
        name, needs_sens_maps, needs_kspace: the network's (``needs_kspace`` is True).
    """

    needs_kspace = True

    def __init__(
        self, net: nn.Module, rho: float = 0.4, num_splits: int = 1, selection: str = "gaussian"
    ) -> None:
        super().__init__()
        if not isinstance(net, DataConsistent):
            raise ValueError(
                f"net: {type(net).__name__} has no data consistency on k-space points (no "
                "kspace_estimate): SSDU trains an unrolled network (model=varnet or modl)"
            )
        self.splitter = SSDUSplit(rho, selection)
        self.num_splits = positive_int("num_splits", num_splits)
        self.rho, self.selection = self.splitter.rho, self.splitter.selection
        # a view of net: its parameters, buffers and submodules are this module's own
        self._parameters, self._buffers, self._modules = net._parameters, net._buffers, net._modules
        self._non_persistent_buffers_set = net._non_persistent_buffers_set
        object.__setattr__(self, "net", net)  # not registered: no "net." prefix
        self.name = net.name
        self.needs_sens_maps = net.needs_sens_maps

    def train(self, mode: bool = True) -> SSDU:
        """Train/eval mode for the wrapper and the network (which reads its own flag)."""
        super().train(mode)
        self.net.train(mode)
        return self

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The network as a reconstructor, on all acquired points."""
        return self.net(masked_kspace, mask, sens_maps, crop_size)

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        """SSDU's terms: the network's k-space estimate from Theta, the measurement and the
        loss set Lambda (``pred_kspace``, ``ref_kspace``, ``kspace_mask``; K samples per
        slice in training), the image of the first split's estimate and the target as image
        terms (no SSDU loss reads them), and in validation ``recon`` from all acquired points."""
        if batch.masked_kspace is None or batch.sample_seed is None:
            raise ValueError(
                "SSDU needs the batch's masked_kspace and sample_seed (data.transform=device "
                "and the FastMRIDataModule's batches)"
            )
        crop = tuple(batch.target.shape[-2:])
        measured = (
            self.net.measurement_grid(batch.masked_kspace, crop)
            if hasattr(self.net, "measurement_grid")
            else batch.masked_kspace
        )  # (B, C, H, W) on the network's grid
        b, _, height, _ = measured.shape
        k = self.num_splits if self.training else 1
        seeds = [split_seed(int(s), i) for s in batch.sample_seed.tolist() for i in range(k)]
        columns = batch.mask.repeat_interleave(k, 0)  # (B K, W)
        dc, held = self.splitter(columns.cpu(), height, seeds)  # (B K, H, W) each
        dc, held = dc.to(measured.device), held.to(measured.device)
        ref = measured.repeat_interleave(k, 0)  # (B K, C, H, W)
        estimate = self.net.kspace_estimate(ref * dc[:, None], dc)  # (B K, C, H, W)
        image = center_crop(rss(ifft2c(estimate[::k]), dim=1), crop).float()  # (B, h, w)
        recon = None
        if not self.training:  # the reconstruction the metrics score: all acquired points
            recon = self.net(batch.masked_kspace, batch.mask, None, crop)
        pred, target = image, batch.target
        if batch.crop is not None:
            pred, target = batch.crop.apply(pred), batch.crop.apply(target)
        return LossTerms(
            pred,
            target,
            batch.max_value.to(pred.dtype),
            recon,
            pred_kspace=estimate,
            ref_kspace=ref,
            kspace_mask=held[:, None],  # (B K, 1, H, W)
        )
