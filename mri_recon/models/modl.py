"""MoDL: model-based deep learning, a CNN denoiser alternating with exact data consistency.

Each of ``K`` unrolls (Aggarwal, Mani & Jacob 2019, eq. 7-9) takes

    z_k     = D_w(x_k)                                   (residual CNN, shared across unrolls)
    x_{k+1} = argmin_x ||A x - y||^2 + lam ||x - z_k||^2 = (A^H A + lam I)^{-1} (A^H y + lam z_k)

from ``x_0 = A^H y``, the inner problem solved by conjugate gradients on the SENSE operator
``A = M F S`` (:class:`mri_recon.physics.operators.SenseOperator`; single-coil: one coil of
ones). ``lam`` is learned, kept positive by learning its logarithm. The output is ``|x_K|``
cropped to the target: on the target's scale for coil maps with RSS 1 (the ACS ratio maps).

As in the authors' code (github.com/hkaggarwal/modl, ``model.py``): ``D_w(x) = x + N_w(x)``
on the two-channel real view, ``N_w`` ``num_layers`` 3 x 3 convolutions of ``chans`` channels
(no bias), each followed by batch norm and a ReLU, the last (2 channels out) by batch norm
only, "to avoid truncating the negative part of the learned noise"; one ``lam`` shared by
all unrolls, initialised at 0.05; 10 CG iterations. The CG solve's gradient is by default
another CG solve (``dc_gradient="implicit"``, the paper's section III-C: the system matrix
is Hermitian, so d/d rhs is the same solve, and d/d lam = -Re<grad_rhs, x>), which stores
nothing of the CG iterations; ``"unrolled"`` back-propagates through them (the authors' "AG").

Differences, for this framework's data: each slice's measured k-space is divided by
``max |A^H y|`` before the network and the result multiplied back (the authors normalise their
data set offline; the CNN's batch norm is not scale-free around the residual). The data
consistency accepts column masks (B, W) and point masks (B, 1|H, W) (a self-supervised split
of the acquired points). Without coil maps from the caller (training, and the evaluation,
which passes none: ``needs_sens_maps`` is False) the model uses the ACS ratio maps of its own
input, :func:`mri_recon.physics.coils.estimate_sens_maps` (the VarNet's ``maps=acs``), so it
is evaluated with the maps it was trained with.

Reference:
    H. K. Aggarwal, M. P. Mani, M. Jacob. "MoDL: Model-based deep learning architecture for
    inverse problems." IEEE Trans. Med. Imaging 38(2):394-405, 2019, arXiv:1712.02862.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mri_recon.checks import boolean, integer, number, one_of, positive, positive_int
from mri_recon.contract import LossTerms, TrainingBatch, check_inputs
from mri_recon.models.norms import make_norm
from mri_recon.physics.cg import conjugate_gradient
from mri_recon.physics.coils import CHALLENGES, estimate_sens_maps
from mri_recon.physics.crop import center_crop, crop_readout, readout_rows
from mri_recon.physics.fft import fft2c
from mri_recon.physics.operators import SenseOperator

DC_GRADIENTS = ("implicit", "unrolled")


class _ImplicitSolve(torch.autograd.Function):
    """x = (A^H A + lam I)^{-1} rhs by CG, its gradient by CG on the same Hermitian system."""

    @staticmethod
    def forward(ctx, rhs, lam, normal, iterations, tol):  # noqa: ANN001, ANN205
        x = conjugate_gradient(normal, rhs, lam, iterations, tol).image
        ctx.save_for_backward(x, lam)
        ctx.normal, ctx.iterations, ctx.tol = normal, iterations, tol
        return x

    @staticmethod
    def backward(ctx, grad_x):  # noqa: ANN001, ANN205
        x, lam = ctx.saved_tensors
        grad_rhs = conjugate_gradient(ctx.normal, grad_x, lam, ctx.iterations, ctx.tol).image
        # dx/dlam = -(A^H A + lam I)^{-1} x, so dL/dlam = Re<grad_x, dx/dlam> = -Re<grad_rhs, x>
        grad_lam = -torch.view_as_real(grad_rhs.conj() * x)[..., 0].sum()
        return grad_rhs, grad_lam.to(lam.dtype).reshape(lam.shape), None, None, None


class ResidualCNN(nn.Module):
    """MoDL's denoiser ``D_w(x) = x + N_w(x)`` on complex images: the two-channel real view,
    ``num_layers`` conv3x3-norm(-ReLU) layers of ``chans`` channels, the last without ReLU.

    ``identity_init``: the last normalisation's scale starts at zero (batch/instance/group
    norms), so ``D_w`` starts as the identity and the first unrolls as CG-SENSE with a
    Tikhonov prior at ``x_k``; the paper's initialisation starts it at unit-variance noise.
    """

    def __init__(
        self, chans: int = 64, num_layers: int = 5, norm: str = "batch", identity_init: bool = False
    ) -> None:
        super().__init__()
        widths = [2, *[chans] * (num_layers - 1), 2]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            # no bias before a normalisation that removes it (the authors' convolutions have none)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none")]
            layers += [make_norm(norm, c_out)] + ([nn.ReLU(inplace=True)] * (i < num_layers - 1))
        self.layers = nn.Sequential(*layers)
        if identity_init:  # the last layer's output starts at zero: D_w(x) = x
            last_norm, last_conv = self.layers[-1], self.layers[-2]
            if isinstance(last_norm, nn.Identity):
                nn.init.zeros_(last_conv.weight)
                nn.init.zeros_(last_conv.bias)
            else:
                nn.init.zeros_(last_norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """complex (B, H, W) -> complex (B, H, W) (float32 whatever the autocast)."""
        channels = torch.view_as_real(x).permute(0, 3, 1, 2)  # (B, 2, H, W)
        noise = self.layers(channels).float().permute(0, 2, 3, 1).contiguous()  # (B, H, W, 2)
        return x + torch.view_as_complex(noise)


class MoDL(nn.Module):
    """MoDL in the reconstructor and training contracts (see the module docstring).

    Args:
        num_unrolls: K, the unrolled denoise + data-consistency steps (paper: 10).
        chans: channels of the denoiser's hidden layers (paper: 64).
        num_layers: convolutions of the denoiser (paper: 5).
        cg_iterations: the most CG iterations per data-consistency step (paper: 10).
        cg_tol: a slice's CG stops at relative residual ``||r|| / ||rhs|| <= cg_tol``.
        lam_init: the initial data-consistency weight ``lam`` > 0 (paper: 0.05), learned.
        norm: the denoiser's normalisation (:data:`mri_recon.models.norms.NORM_TYPES`;
            paper: ``batch``; ``group`` uses the default group count).
        identity_init: start the denoiser at the identity (see :class:`ResidualCNN`).
        challenge: ``multicoil`` or ``singlecoil`` (coil maps of ones): the data it takes.
        crop_readout: with a column mask, crop the image rows to the target height first
            (the readout is fully sampled: exact data consistency on the cropped field of
            view, as the VarNet's); point masks keep every row.
        checkpoint_unrolls: recompute each unroll's activations in the backward pass
            (``torch.utils.checkpoint``) when training. Batch norm's running statistics are
            then updated twice per unroll (once more in the recomputation).
        dc_gradient: ``implicit`` (the CG solve's gradient by a CG solve) or ``unrolled``
            (autograd through the CG iterations).

    Attributes:
        name: ``"modl"``.
        needs_sens_maps: False: in evaluation, as in training, it uses the ACS ratio maps of
            its own input (the evaluation's ``coils`` node is for the classical methods: with
            ESPIRiT maps a MoDL trained on the ratio lost 2.0 dB at 8x, docs/RESULTS.md).
            A caller may still pass maps.
        needs_kspace: True.
    """

    name = "modl"
    needs_sens_maps = False
    needs_kspace = True

    def __init__(
        self,
        num_unrolls: int = 10,
        chans: int = 64,
        num_layers: int = 5,
        cg_iterations: int = 10,
        cg_tol: float = 1e-6,
        lam_init: float = 0.05,
        norm: str = "batch",
        identity_init: bool = False,
        challenge: str = "multicoil",
        crop_readout: bool = False,
        checkpoint_unrolls: bool = False,
        dc_gradient: str = "implicit",
    ) -> None:
        super().__init__()
        self.num_unrolls = positive_int("num_unrolls", num_unrolls)
        self.chans = positive_int("chans", chans)
        self.num_layers = integer("num_layers", num_layers, 2)
        self.cg_iterations = positive_int("cg_iterations", cg_iterations)
        self.cg_tol = number("cg_tol", cg_tol, 0, 1, open_high=True)
        self.lam_init = positive("lam_init", lam_init)
        self.norm = norm  # checked by make_norm
        self.identity_init = boolean("identity_init", identity_init)
        self.challenge = one_of("challenge", challenge, CHALLENGES)
        self.crop_readout = boolean("crop_readout", crop_readout)
        self.checkpoint_unrolls = boolean("checkpoint_unrolls", checkpoint_unrolls)
        self.dc_gradient = one_of("dc_gradient", dc_gradient, DC_GRADIENTS)
        self.denoiser = ResidualCNN(chans, num_layers, norm, identity_init)
        self.log_lam = nn.Parameter(torch.tensor(math.log(self.lam_init)))

    @property
    def lam(self) -> torch.Tensor:
        """The data-consistency weight, a positive 0-d tensor."""
        return self.log_lam.exp()

    def solve(self, op: SenseOperator, rhs: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        """``(A^H A + lam I)^{-1} rhs`` by CG: complex (B, H, W) -> (B, H, W)."""
        if self.dc_gradient == "implicit":
            return _ImplicitSolve.apply(rhs, lam, op.normal, self.cg_iterations, self.cg_tol)
        return conjugate_gradient(op.normal, rhs, lam, self.cg_iterations, self.cg_tol).image

    def _unroll(self, x: torch.Tensor, atb: torch.Tensor, op: SenseOperator) -> torch.Tensor:
        """One unroll: x (B, H, W) -> the data-consistent x after the denoiser."""
        z = self.denoiser(x)
        with torch.autocast(x.device.type, enabled=False):  # CG in float32 under any autocast
            lam = self.lam
            return self.solve(op, atb + lam * z.to(atb.dtype), lam)

    def reconstruct(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, sens_maps: torch.Tensor
    ) -> torch.Tensor:
        """The complex image ``x_K``: masked k-space complex (B, C, H, W), mask bool (B, W) or
        (B, 1|H, W), maps complex (B, C, H, W) -> complex (B, H, W) on the data's scale."""
        op = SenseOperator(sens_maps, mask)
        atb = op.A_adjoint(masked_kspace)  # (B, H, W)
        scale = atb.abs().amax(dim=(-2, -1)).clamp_min(torch.finfo(atb.real.dtype).tiny)
        scale = scale[:, None, None]  # (B, 1, 1): the denoiser sees images of peak 1
        atb = atb / scale
        x = atb
        for _ in range(self.num_unrolls):
            if self.checkpoint_unrolls and self.training and torch.is_grad_enabled():
                x = checkpoint(self._unroll, x, atb, op, use_reentrant=False)
            else:
                x = self._unroll(x, atb, op)
        return x * scale

    def _inputs(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        height: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The k-space, mask and maps the unrolls run on: the readout cropped to ``height``
        rows (``crop_readout``, column masks), the maps estimated when not given."""
        coils = int(masked_kspace.shape[1])
        if (coils > 1) != (self.challenge == "multicoil"):
            raise ValueError(
                f"MoDL(challenge={self.challenge!r}) got k-space with {coils} coil(s) "
                f"(masked_kspace {tuple(masked_kspace.shape)}): a {self.challenge} model"
            )
        mask = mask.to(device=masked_kspace.device, dtype=torch.bool)
        columns = mask if mask.ndim == 2 else mask.all(dim=-2)  # (B, W): fully sampled columns
        if sens_maps is None:
            sens_maps = estimate_sens_maps(masked_kspace, columns)
        h, w = masked_kspace.shape[-2:]
        if self.crop_readout and h > height and (mask.ndim == 2 or mask.shape[1] == 1):
            rows = readout_rows(h, height)
            masked_kspace = crop_readout(masked_kspace, rows)  # (B, C, h, W)
            sens_maps = sens_maps[..., rows[0] : rows[1], :]  # the same rows of the image
        return masked_kspace, mask, sens_maps

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex64 (B, C, H, W), bool (B, W), maps (B, C, H, W)
        or None (the ACS ratio maps of the input) -> float32 (B, h, w), ``|x_K|`` cropped."""
        check_inputs(masked_kspace, mask, sens_maps, crop_size)
        kspace, mask, maps = self._inputs(masked_kspace, mask, sens_maps, crop_size[0])
        image = self.reconstruct(kspace, mask, maps).abs()  # (B, H, W)
        return center_crop(image, tuple(crop_size)).to(torch.float32)

    def measurement_grid(
        self, masked_kspace: torch.Tensor, crop_size: tuple[int, int]
    ) -> torch.Tensor:
        """The measured k-space on the grid the unrolls run on (``crop_readout``: the rows
        cropped to the target height, exact for a fully sampled readout), complex (B, C, H', W);
        with :meth:`kspace_estimate` MoDL is a :class:`~mri_recon.contract.DataConsistent`
        (SSDU draws its split on this grid)."""
        if self.crop_readout and masked_kspace.shape[-2] > crop_size[0]:
            rows = readout_rows(masked_kspace.shape[-2], crop_size[0])
            return crop_readout(masked_kspace, rows)  # (B, C, h, W)
        return masked_kspace

    def kspace_estimate(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``F S x_K`` from the points ``mask`` marks (columns (B, W) or points (B, 1|H, W)),
        on the grid of ``masked_kspace`` (no readout crop here), the ACS ratio maps of the
        columns sampled at every row: complex (B, C, H, W)."""
        kspace, mask, maps = self._inputs(masked_kspace, mask, None, masked_kspace.shape[-2])
        return fft2c(maps * self.reconstruct(kspace, mask, maps)[:, None])

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        """What the training loss compares: the reconstruction of ``batch.masked_kspace``
        (under ``batch.mask``: columns (B, W) or points (B, 1|H, W)) and the target on the
        target's scale, ``data_range`` = the volume max (as the VarNet); the k-space terms
        are the prediction's coil k-space ``F S x`` (B, C, H', W) and the measured k-space
        on the same grid (the readout cropped when the model crops it)."""
        target = batch.target  # (B, h, w)
        crop_size = tuple(target.shape[-2:])
        columns = batch.mask if batch.mask.ndim == 2 else batch.mask.any(dim=-2)  # (B, W)
        check_inputs(batch.masked_kspace, columns, None, crop_size)  # SenseOperator: the points
        kspace, mask, maps = self._inputs(batch.masked_kspace, batch.mask, None, crop_size[0])
        x = self.reconstruct(kspace, mask, maps)  # (B, H', W)
        recon = center_crop(x.abs(), crop_size).to(torch.float32)
        data_range = batch.max_value.to(recon.dtype)
        pred_kspace = fft2c(maps * x[:, None])  # (B, C, H', W)
        pred, ref, full = recon, target, recon
        if batch.crop is not None:
            pred, ref, full = batch.crop.apply(recon), batch.crop.apply(target), None
        return LossTerms(pred, ref, data_range, full, pred_kspace=pred_kspace, ref_kspace=kspace)
