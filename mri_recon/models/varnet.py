"""End-to-end variational network (E2E VarNet): unrolled data consistency + U-Net refinement.

Each cascade updates the multi-coil k-space estimate ``k`` as (Sriram et al. 2020, eq. 4)

    k <- k - eta * M (k - y) - F S R(S^H F^H k)

with the measured ``y``, the column mask ``M``, a learned step ``eta`` (``dc_weight``) and a
complex U-Net ``R`` acting on the coil-combined image. The coil maps ``S`` are estimated by
another U-Net from the fully sampled centre of k-space, applied to each coil image and
normalised by the root-sum-of-squares over coils, and learned end to end. The output is the
RSS of the final coil images, cropped to the target. Single-coil data (C = 1): the maps are
ones and the map network is absent (``challenge="singlecoil"``).

Architecture = ``fastmri.models.VarNet`` (v0.3.0) with native complex tensors and
``mri_recon.physics`` (centred FFTs, :class:`SenseOperator`, :func:`center_band`). Its weights
load into ours with one renaming, ``sens_net.norm_unet.unet.`` -> ``sens_net.unet.`` (the
cascades' keys ``cascades.<i>.model.unet.*`` and ``cascades.<i>.dc_weight`` are the same);
with ``norm="instance"`` our InstanceNorm's affine (scale 1, shift 0 at initialisation) is
fastMRI's affine-free InstanceNorm (tests/models/test_varnet.py checks the outputs agree).

The centre band of the map network: by default each slice's :func:`center_band` (the run of
sampled columns around ``W // 2``, the ACS the mask really has; the same band
:func:`mri_recon.physics.coils.estimate_sens_maps` uses). fastMRI derives ``2 * min(left,
right)`` instead, a symmetric band that drops a sampled column at odd widths (28 instead of
29 at W = 367); ``num_low_frequencies`` selects fastMRI's ``[(W - n + 1) // 2, ... + n)``.

Reference:
    A. Sriram, J. Zbontar, T. Murrell, A. Defazio, C. L. Zitnick, N. Yakubova, F. Knoll,
    P. Johnson. "End-to-end variational networks for accelerated MRI reconstruction."
    MICCAI 2020, arXiv:2004.06688.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from mri_recon.checks import one_of, positive_int
from mri_recon.contract import LossTerms, TrainingBatch, check_inputs
from mri_recon.models.unet import Unet
from mri_recon.physics.coils import CHALLENGES, estimate_sens_maps
from mri_recon.physics.crop import center_crop, crop_readout, readout_rows, rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.operators import SenseOperator, point_mask

MAPS = ("learned", "acs", "refined", "fastmri")


class NormUnet(nn.Module):
    """fastMRI's NormUnet on complex images: real/imaginary channels, each normalised by its
    mean and (unbiased) std, zero-padded (centred) to a multiple of 16, a :class:`Unet` with
    2 channels in and out, then the padding and normalisation undone. ``identity_init``: a
    residual U-Net with its last convolution at zero, so the module starts as the identity."""

    def __init__(
        self,
        chans: int,
        pools: int,
        norm: str,
        drop_prob: float = 0.0,
        norm_groups: int | None = None,
        identity_init: bool = False,
    ) -> None:
        super().__init__()
        self.unet = Unet(2, 2, chans, pools, drop_prob, norm, identity_init, norm_groups)
        if identity_init:  # residual U-Net whose last 1x1 convolution starts at zero: x -> x
            last = self.unet.up_conv[-1][-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """complex (N, H, W) -> complex (N, H, W)."""
        n, h, w = x.shape
        x = torch.view_as_real(x).permute(0, 3, 1, 2)  # (N, 2, H, W)
        std, mean = torch.std_mean(x.reshape(n, 2, -1), dim=2)  # (N, 2) each
        x = (x - mean[..., None, None]) / std[..., None, None]
        ph, pw = -h % 16, -w % 16  # fastMRI: ((h - 1) | 15) + 1 - h
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        x = self.unet(x).float()[..., ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]  # any autocast
        x = x * std[..., None, None] + mean[..., None, None]
        return torch.view_as_complex(x.permute(0, 2, 3, 1).contiguous())


class VarNetBlock(nn.Module):
    """One cascade: soft data consistency with a learned weight, and the refinement."""

    def __init__(self, model: NormUnet) -> None:
        super().__init__()
        self.model = model
        self.dc_weight = nn.Parameter(torch.ones(1))

    def forward(
        self,
        kspace: torch.Tensor,
        ref_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor,
    ) -> torch.Tensor:
        """complex (B, C, H, W) estimate and measured k-space, bool (B, 1, 1|H, W) sampled
        points (columns or any points), maps (B, C, H, W) -> the new estimate (B, C, H, W)."""
        soft_dc = torch.where(mask, kspace - ref_kspace, 0) * self.dc_weight
        everywhere = torch.ones(
            mask.shape[0], kspace.shape[-1], dtype=torch.bool, device=mask.device
        )
        full = SenseOperator(sens_maps, everywhere)  # F S and S^H F^H, no mask
        refined = full.A(self.model(full.A_adjoint(kspace)))  # (B, C, H, W)
        return kspace - soft_dc - refined


class VarNet(nn.Module):
    """E2E VarNet in the reconstructor contract (see the module docstring).

    Args:
        num_cascades: unrolled iterations (fastMRI: 12).
        chans: channels of the first layer of each cascade's U-Net (fastMRI: 18).
        pools: pooling levels of the cascade U-Nets (fastMRI: 4).
        sens_chans: channels of the coil-map U-Net (fastMRI: 8).
        sens_pools: pooling levels of the coil-map U-Net (fastMRI: 4).
        norm: normalisation of all U-Nets (:data:`mri_recon.models.norms.NORM_TYPES`);
            ``instance`` is fastMRI's architecture.
        challenge: ``multicoil`` (maps learned) or ``singlecoil`` (maps are ones, no map
            network): the k-space the model takes, C > 1 or C = 1.
        crop_readout: crop the image rows to the target height before the cascades (the
            readout is fully sampled, so ``ifft`` along H, crop, ``fft`` back is exact data
            consistency for the cropped field of view; 2x fewer pixels for fastMRI data).
        checkpoint_cascades: recompute each cascade's activations in the backward pass
            (``torch.utils.checkpoint``) instead of storing them, when training.
        drop_prob: dropout of the U-Nets.
        maps: ``learned`` (E2E VarNet: the map U-Net, trained end to end), ``acs`` (no map
            network: :func:`mri_recon.physics.coils.estimate_sens_maps`, the ACS ratio maps
            TV-SENSE uses, fixed; the variational network of Hammernik et al. 2018 took
            precomputed maps too) or ``refined`` (the map U-Net made residual with its last
            convolution at zero: it starts at the ACS ratio maps, the centre band's coil
            images over their RSS, and learns a correction end to end). Multi-coil only.
            ``fastmri``: fastMRI's released VarNet exactly (``mri-recon-import``): the map
            U-Net on fastMRI's band, ``num_low_frequencies`` columns when the caller gives
            them (a drawn mask's; the evaluation passes them, see :attr:`fastmri_inputs`),
            else ``2 * min(left, right)`` sampled
            columns around ``W // 2``; on single-coil data too (maps ``x / |x|``).
        norm_groups: GroupNorm groups of ``norm="group"`` (:class:`Unet`): None for the
            largest divisor of each channel count up to 32; an int must divide every level's
            channel count of both the cascade and the map U-Nets.

    Attributes:
        name: ``"varnet"``.
        needs_sens_maps: False: the model estimates its own maps.
        needs_kspace: True: trained on k-space, not on the zero-filled images that
            ``data.transform=worker`` ships.
    """

    name = "varnet"
    needs_sens_maps = False
    needs_kspace = True

    def __init__(
        self,
        num_cascades: int = 12,
        chans: int = 18,
        pools: int = 4,
        sens_chans: int = 8,
        sens_pools: int = 4,
        norm: str = "group",
        challenge: str = "multicoil",
        crop_readout: bool = False,
        checkpoint_cascades: bool = False,
        drop_prob: float = 0.0,
        norm_groups: int | None = None,
        maps: str = "learned",
    ) -> None:
        super().__init__()
        positive_int("num_cascades", num_cascades)
        one_of("challenge", challenge, CHALLENGES)
        one_of("maps", maps, MAPS)
        self.num_cascades, self.chans, self.pools = num_cascades, chans, pools
        self.sens_chans, self.sens_pools, self.norm = sens_chans, sens_pools, norm
        self.challenge, self.crop_readout = challenge, bool(crop_readout)
        self.checkpoint_cascades, self.drop_prob = bool(checkpoint_cascades), drop_prob
        self.norm_groups, self.maps = norm_groups, maps
        self.sens_net = (
            NormUnet(sens_chans, sens_pools, norm, drop_prob, norm_groups, maps == "refined")
            if (challenge == "multicoil" or maps == "fastmri") and maps != "acs"
            else None
        )
        # the evaluation gives it fastMRI's inputs: a drawn mask's num_low_frequencies, and
        # the mask zeroed outside the acquired columns (VarNetDataTransform)
        self.fastmri_inputs = maps == "fastmri"
        self.cascades = nn.ModuleList(
            VarNetBlock(NormUnet(chans, pools, norm, drop_prob, norm_groups))
            for _ in range(num_cascades)
        )

    def sens_maps(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | None
    ) -> torch.Tensor:
        """Coil maps complex (B, C, H, W), RSS 1 over coils, from the centre band of each
        slice's k-space (all ones for single-coil; the ACS ratio maps for ``maps="acs"``; ``"refined"`` starts at the same ratio without
        the window)."""
        if self.challenge == "singlecoil" and self.maps != "fastmri":
            return torch.ones_like(masked_kspace)
        if self.sens_net is None:
            return estimate_sens_maps(masked_kspace, mask)
        b, c, h, w = masked_kspace.shape
        band = _band(mask, num_low_frequencies, symmetric=self.maps == "fastmri")  # (B, W)
        low = ifft2c(masked_kspace * band[:, None, None, :])  # (B, C, H, W)
        maps = self.sens_net(low.reshape(b * c, h, w)).reshape(b, c, h, w)
        return maps / rss(maps, dim=1)[:, None]

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
        num_low_frequencies: int | None = None,
    ) -> torch.Tensor:
        """The reconstructor contract: complex64 (B, C, H, W), bool (B, W) -> float32 (B, h, w),
        the RSS of the final coil images. ``sens_maps`` is ignored (the model estimates its
        own); ``num_low_frequencies`` (fastMRI's argument) fixes the map network's centre band
        to ``[(W - n + 1) // 2, + n)``, None uses each slice's :func:`center_band`."""
        check_inputs(masked_kspace, mask, None, crop_size)
        kspace = self._cascades(
            self.measurement_grid(masked_kspace, crop_size), mask, num_low_frequencies
        )
        image = rss(ifft2c(kspace), dim=1)  # (B, H, W)
        return center_crop(image, tuple(crop_size)).to(torch.float32)

    def measurement_grid(
        self, masked_kspace: torch.Tensor, crop_size: tuple[int, int]
    ) -> torch.Tensor:
        """The measured k-space on the grid the cascades run on: with ``crop_readout`` the
        rows cropped to the target height (``ifft`` along H, crop, ``fft``; exact since the
        readout is fully sampled), else ``masked_kspace`` itself: complex (B, C, H' , W)."""
        if self.crop_readout and masked_kspace.shape[-2] > crop_size[0]:
            rows = readout_rows(masked_kspace.shape[-2], crop_size[0])
            return crop_readout(masked_kspace, rows)  # (B, C, h, W)
        return masked_kspace

    def kspace_estimate(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The cascades on the points ``mask`` marks, on the grid of ``masked_kspace`` (see
        :meth:`measurement_grid`; no readout crop here): complex (B, C, H, W), bool (B, W)
        columns or (B, 1|H, W) points -> the final k-space estimate (B, C, H, W)
        (:class:`mri_recon.contract.DataConsistent`). The map network's centre band is the
        run of columns sampled at every row (the calibration region SSDU keeps)."""
        if point_mask(mask, masked_kspace) is None:
            raise ValueError(
                f"mask must be (B, W) or (B, 1|H, W) for masked_kspace "
                f"{tuple(masked_kspace.shape)}, got {tuple(mask.shape)}"
            )
        return self._cascades(masked_kspace, mask, None)

    def _cascades(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, num_low_frequencies: int | None
    ) -> torch.Tensor:
        """Maps, then the cascades: complex (B, C, H, W), bool (B, W) or (B, 1|H, W) -> (B, C, H, W)."""
        coils = int(masked_kspace.shape[1])  # a Python int under torch.jit.trace too
        if (coils > 1) != (self.challenge == "multicoil"):
            raise ValueError(
                f"VarNet(challenge={self.challenge!r}) got k-space with {coils} coil(s) "
                f"(masked_kspace {tuple(masked_kspace.shape)}): a {self.challenge} model"
            )
        points = point_mask(mask, masked_kspace)  # (B, 1, 1|H, W)
        columns = points[:, 0].all(dim=1)  # (B, W): the columns sampled at every row
        maps = self.sens_maps(masked_kspace, columns, num_low_frequencies)
        kspace = masked_kspace.clone()
        for cascade in self.cascades:
            if self.checkpoint_cascades and self.training and torch.is_grad_enabled():
                kspace = checkpoint(
                    cascade, kspace, masked_kspace, points, maps, use_reentrant=False
                )
            else:
                kspace = cascade(kspace, masked_kspace, points, maps)
        return kspace

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        """What the training loss compares (fastMRI's VarNetModule): the reconstruction of
        ``batch.masked_kspace`` and the target on the target's scale (the same windows of
        both when ``batch.crop`` is set), ``data_range`` = the volume max."""
        target = batch.target  # (B, h, w)
        recon = self(batch.masked_kspace, batch.mask, None, tuple(target.shape[-2:]))
        data_range = batch.max_value.to(recon.dtype)
        if batch.crop is None:
            return LossTerms(recon, target, data_range, recon)
        return LossTerms(batch.crop.apply(recon), batch.crop.apply(target), data_range, None)


def _band(mask: torch.Tensor, num_low_frequencies: int | None, symmetric: bool) -> torch.Tensor:
    """The map network's centre band of each slice, bool (B, W), in tensor operations (so a
    traced VarNet finds each mask's own band): ``num_low_frequencies`` columns at
    ``[(W - n + 1) // 2, + n)`` when given (and, if ``symmetric``, not 0); else with
    ``symmetric`` fastMRI's ``SensitivityModel`` rule (``n = max(2 * min(left, right), 1)``,
    ``left``/``right`` the sampled runs below / from ``W // 2``, a run reaching the edge
    counting 0 as its ``argmin`` does); else :func:`center_band` of each mask (the run of
    sampled columns containing ``W // 2``, empty if that column is not sampled)."""
    b, w = mask.shape
    cols = torch.arange(w, device=mask.device)
    c = w // 2
    m = mask.to(torch.int32)
    below = torch.cumprod(m[:, :c].flip(-1), -1).sum(-1)  # (B,) sampled run just below c
    above = torch.cumprod(m[:, c:], -1).sum(-1)  # (B,) sampled run from c on
    if num_low_frequencies is not None and (num_low_frequencies or not symmetric):
        start = torch.full((b,), (w - num_low_frequencies + 1) // 2, device=mask.device)
        stop = start + num_low_frequencies
    elif symmetric:
        left = torch.where(below == c, 0, below)
        right = torch.where(above == w - c, 0, above)
        n = torch.clamp(2 * torch.minimum(left, right), min=1)
        start = (w - n + 1) // 2
        stop = start + n
    else:
        start, stop = c - below * (above > 0), c + above
    return (cols >= start[:, None]) & (cols < stop[:, None])
