"""Total-variation compressed sensing, solved by primal-dual (Chambolle-Pock) iterations.

    x* = argmin_x 1/2 ||M F S x - y||^2 + lam_eff TV(x),   TV(x) = sum_i |(grad x)_i|_2

with isotropic TV of the complex image x (B, H, W) on the full k-space grid, S = 1 for
single-coil. ``lam_eff = lam * max|zero-filled image|`` per slice: TV is 1-homogeneous and
the data term 2-homogeneous, so scaling y by s scales x* by s and one ``lam`` serves
volumes of any intensity.

Solver (Chambolle & Pock, J. Math. Imaging Vis. 2011, Algorithm 1, theta = 1):

- single-coil: K = grad, G = data term. G's prox is closed form in k-space because F is
  unitary and M diagonal: ``prox_{tau G}(v) = F^H (F v + tau M y) / (1 + tau M)``.
  Steps ``tau * sigma * ||grad||^2 = 1`` with ``||grad||^2 <= 8``.
- multi-coil: the data term has no cheap prox, so it goes to the dual: K = [A; grad],
  F*(q, p) = 1/2 ||q||^2 + <q, y> + indicator(|p_i| <= lam_eff), G = 0. Block steps
  ``tau (sigma_q ||A||^2 + sigma_p ||grad||^2) = 1`` with ``||A||^2 <= max_i sum_c |S_c|^2``.

Every update is a tensor op over the whole batch (same code on CPU and GPU; nothing assumes
CUDA). A slice stops (is frozen) once ``||x_k - x_{k-1}|| / ||x_k|| < tol``; convergence is
checked every ``CHECK_EVERY`` iterations (the only host synchronisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from mri_recon.checks import boolean, number, positive, positive_int
from mri_recon.contract import check_inputs
from mri_recon.physics.crop import center_crop, crop_readout, readout_rows, rss
from mri_recon.physics.fft import fft2c, ifft2c, ifftc
from mri_recon.physics.operators import GRAD_NORM_SQ, SenseOperator, div2d, grad2d

CHECK_EVERY = 5
# Primal steps (sigma follows from tau); how they were chosen: docs/RESULTS.md.
TAU_SINGLE = 10.0
TAU_SENSE = 10.0
# Rows kept beyond the output crop on each side when the readout is cropped (crop_readout):
# TV couples rows over a few pixels only; docs/RESULTS.md (issue 20) has the measurement.
READOUT_MARGIN = 16


@dataclass(frozen=True)
class TVResult:
    """Output of :func:`solve_tv`.

    Attributes:
        image: complex (B, H, W) solution on the full grid.
        iterations: int64 (B,) iterations run per slice.
        converged: bool (B,) whether the relative-change rule stopped the slice.
        lam_eff: real (B,) the regularisation weight actually used.
    """

    image: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    lam_eff: torch.Tensor


def tv_norm(x: torch.Tensor) -> torch.Tensor:
    """Isotropic TV per slice, sum over pixels of sqrt(|d_H x|^2 + |d_W x|^2): complex or
    real (B, H, W) -> real (B,)."""
    g = grad2d(x)  # (B, 2, H, W)
    return torch.sqrt((g.abs() ** 2).sum(dim=1)).sum(dim=(-2, -1))


def tv_objective(
    x: torch.Tensor, y: torch.Tensor, op: SenseOperator, lam_eff: torch.Tensor | float
) -> torch.Tensor:
    """The TV-CS objective 1/2 ||A x - y||^2 + lam_eff TV(x) per slice: x complex (B, H, W),
    y complex (B, C, H, W) masked k-space, ``lam_eff`` float or real (B,) -> real (B,)."""
    resid = op.A(x) - y * op.mask[:, None, None, :]
    data = 0.5 * (resid.abs() ** 2).sum(dim=(1, 2, 3))
    return data + torch.as_tensor(lam_eff, dtype=data.dtype, device=data.device) * tv_norm(x)


def data_scale(masked_kspace: torch.Tensor) -> torch.Tensor:
    """max over pixels of the zero-filled RSS image: complex (B, C, H, W) -> real (B,)."""
    return rss(ifft2c(masked_kspace), dim=1).amax(dim=(-2, -1))


def _sq_abs(z: torch.Tensor) -> torch.Tensor:
    """|z|^2 of a complex tensor (torch's complex abs is slow on CPU)."""
    return z.real.square() + z.imag.square()


def _project_(p: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """In place: project each pixel's gradient vector of p (B, 2, H, W) complex onto the ball
    |p_i|_2 <= radius (B, 1, 1, 1)."""
    norm = _sq_abs(p).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    norm.sqrt_().div_(radius).clamp_(min=1.0).reciprocal_()
    return p.mul_(norm)


def _norms(z: torch.Tensor) -> torch.Tensor:
    """L2 norm of each slice of complex z (B, H, W) -> real (B,)."""
    return torch.linalg.vector_norm(torch.view_as_real(z).flatten(1), dim=1)


# Why the hybrid (x-space along H, k-space along W) domain: M acts on columns only and the
# readout is fully sampled, so with y~ = F_H^H y, ||M F S x - y|| = ||M F_W S x - y~||
# (F_H is unitary and commutes with M). Each iteration then needs 1-D FFTs along W only.
# The FFT shifts are applied once, outside the iterations: the k-space side (y, M, the dual
# q) is kept as the plain DFT along W of the hybrid image, fft(ifftc(y~, W)). With P the
# phase ramp of the shift, fftc(a) = P * fft(a) and ifftc(u) = ifft(u / P) along W, so
# elementwise k-space steps see the same values, and each step needs bare FFTs only.


def _plain(y: torch.Tensor) -> torch.Tensor:
    """Centered k-space along W -> the plain DFT of its image: fft(ifftc(y, -1)), (..., W)."""
    return torch.fft.fft(ifftc(y, -1), dim=-1, norm="ortho")


def _fft_w(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fft(x, dim=-1, norm="ortho")


def _ifft_w(k: torch.Tensor) -> torch.Tensor:
    return torch.fft.ifft(k, dim=-1, norm="ortho")


class _SingleCoilStep:
    """One Chambolle-Pock step for y = M F x: dual TV step, closed-form data prox."""

    def __init__(self, y: torch.Tensor, mask: torch.Tensor, lam_eff: torch.Tensor, tau: float):
        m = mask.to(y.real.dtype)[:, None, :]  # (B, 1, W)
        self.y = _plain(ifftc(y[:, 0], -2) * m)  # (B, H, W) hybrid domain, plain along W
        m = torch.fft.ifftshift(m, dim=-1)  # the mask in plain order
        self.tau = tau
        self.sigma = 1.0 / (tau * GRAD_NORM_SQ)
        self.tau_my = tau * self.y
        self.inv = 1.0 / (1.0 + tau * m)
        self.radius = lam_eff[:, None, None, None].clamp_min(torch.finfo(lam_eff.dtype).tiny)
        self.p = torch.zeros((y.shape[0], 2, *y.shape[-2:]), dtype=y.dtype, device=y.device)

    def x0(self) -> torch.Tensor:
        return _ifft_w(self.y)

    def __call__(self, x: torch.Tensor, x_bar: torch.Tensor) -> torch.Tensor:
        _project_(self.p.add_(grad2d(x_bar), alpha=self.sigma), self.radius)
        v = _fft_w(x + self.tau * div2d(self.p))
        return _ifft_w((v + self.tau_my) * self.inv)


class _SenseStep:
    """One Chambolle-Pock step for y = M F S x: dual steps on both blocks of K = [A; grad]
    (the data residual q, a prox of 1/2 ||q||^2 + <q, y>, and the TV dual p, projected onto
    |p_i| <= lam_eff), then the primal step x - tau K^H (q, p); no primal prox (G = 0)."""

    def __init__(self, y: torch.Tensor, op: SenseOperator, lam_eff: torch.Tensor, tau: float):
        m = op.mask.to(y.real.dtype)[:, None, None, :]  # (B, 1, 1, W)
        self.s = op.sens_maps  # (B, C, H, W)
        self.s_conj = self.s.conj().resolve_conj()  # materialised once, not per iteration
        self.y = _plain(ifftc(y, -2) * m)  # (B, C, H, W) hybrid domain, plain along W
        self.m = torch.fft.ifftshift(m, dim=-1)  # the mask in plain order
        a_norm_sq = (self.s.abs() ** 2).sum(dim=1).amax(dim=(-2, -1)).clamp_min(1e-12)  # (B,)
        self.tau = tau
        # Split the step budget 1/tau evenly between the two dual blocks.
        self.sigma_q = (0.5 / (tau * a_norm_sq))[:, None, None, None]
        self.shrink = 1.0 / (1.0 + self.sigma_q)
        self.sigma_p = 0.5 / (tau * GRAD_NORM_SQ)
        self.radius = lam_eff[:, None, None, None].clamp_min(torch.finfo(lam_eff.dtype).tiny)
        self.p = torch.zeros((y.shape[0], 2, *y.shape[-2:]), dtype=y.dtype, device=y.device)
        self.q = torch.zeros_like(y)

    def x0(self) -> torch.Tensor:
        return (self.s.conj() * _ifft_w(self.y)).sum(dim=1)

    def __call__(self, x: torch.Tensor, x_bar: torch.Tensor) -> torch.Tensor:
        _project_(self.p.add_(grad2d(x_bar), alpha=self.sigma_p), self.radius)
        ax = _fft_w(self.s * x_bar[:, None]).mul_(self.m).sub_(self.y).mul_(self.sigma_q)
        self.q.add_(ax).mul_(self.shrink)
        ahq = (_ifft_w(self.q).mul_(self.s_conj)).sum(dim=1)  # q is zero off the mask
        return x - self.tau * (ahq - div2d(self.p))


def _is_ones(sens_maps: torch.Tensor | None) -> bool:
    return sens_maps is None or (sens_maps.shape[1] == 1 and bool((sens_maps == 1).all()))


def solve_tv(
    masked_kspace: torch.Tensor,
    mask: torch.Tensor,
    sens_maps: torch.Tensor | None,
    lam: float,
    max_iters: int,
    tol: float,
    tau: float | None = None,
    progress: bool = False,
    scale: torch.Tensor | None = None,
) -> TVResult:
    """Minimise 1/2 ||M F S x - y||^2 + lam_eff TV(x) for a batch of slices.

    Args:
        masked_kspace: complex (B, C, H, W) y.
        mask: bool (B, W).
        sens_maps: complex (B, C, H, W), or None for single-coil (C = 1, S = 1).
        lam: relative weight; ``lam_eff = lam * data_scale(masked_kspace)``.
        max_iters: iteration cap.
        tol: per-slice stopping threshold on the relative change of x (0 disables it).
        tau: primal step > 0; None picks the default of the single- or multi-coil solver.
        progress: show a tqdm bar over iterations.
        scale: real (B,) data scale in place of ``data_scale(masked_kspace)`` (the
            reconstructor passes the full field of view's when it crops the readout).

    Returns:
        TVResult with the complex (B, H, W) image and per-slice iteration counts.
    """
    check_inputs(masked_kspace, mask, sens_maps)
    if masked_kspace.shape[1] > 1 and sens_maps is None:
        raise ValueError(
            f"sens_maps is required for multi-coil masked_kspace {tuple(masked_kspace.shape)}"
        )
    lam_eff = lam * (data_scale(masked_kspace) if scale is None else scale)  # (B,)
    mask = mask.to(masked_kspace.device)
    if _is_ones(sens_maps):
        step = _SingleCoilStep(masked_kspace, mask, lam_eff, tau or TAU_SINGLE)
    else:
        op = SenseOperator(sens_maps.to(masked_kspace), mask)
        step = _SenseStep(masked_kspace, op, lam_eff, tau or TAU_SENSE)
    x, iters, done = _iterate(step, max_iters, tol, progress)
    return TVResult(image=x, iterations=iters, converged=done, lam_eff=lam_eff)


def _iterate(step, max_iters: int, tol: float, progress: bool):
    """Run ``step`` with over-relaxation (theta = 1). Every ``CHECK_EVERY`` iterations, slices
    whose relative change is below ``tol`` are marked done and frozen from then on."""
    x = step.x0()
    x_bar = x
    b = x.shape[0]
    iters = torch.zeros(b, dtype=torch.int64, device=x.device)
    done = torch.zeros(b, dtype=torch.bool, device=x.device)
    any_done = False
    for k in tqdm(range(max_iters), desc="TV", disable=not progress, leave=False):
        x_new = step(x, x_bar)
        iters += (~done).long()
        if any_done:  # keep frozen slices where they stopped
            active = ~done[:, None, None]
            x_new = torch.where(active, x_new, x)
            x_bar = torch.where(active, 2 * x_new - x, x)
        else:
            x_bar = 2 * x_new - x
        if (k + 1) % CHECK_EVERY == 0 and tol > 0:
            done = done | (_norms(x_new - x) <= tol * _norms(x_new))
            any_done = bool(done.any())  # the one host sync, every CHECK_EVERY iterations
            if bool(done.all()):
                x = x_new
                break
        x = x_new
    return x, iters, done


class TVReconstructor:
    """TV compressed sensing obeying the reconstructor contract (name "tv"). The defaults
    were tuned on the synthetic single-coil data (docs/RESULTS.md); the config's default
    ``lam`` follows the data's challenge (configs/tv/default.yaml).

    Args:
        lam: relative TV weight (``lam_eff = lam * max |zero-filled|`` per slice, the maximum
            over the whole field of view).
        max_iters: iteration cap.
        tol: stop a slice once ``||x_k - x_{k-1}|| / ||x_k|| < tol`` (0: run max_iters).
        progress: tqdm bar over iterations.
        tau: primal step (None: the solver's default, 10).
        data_consistency: return the magnitude of ``F^H (y + (1 - M) F S x)`` (measured
            samples put back, RSS over coils) instead of the minimiser itself. Off by default
            (BART's ``pics`` and the TV-CS literature report the minimiser); on noisy data it
            keeps the noise floor of the RSS target and scores higher SSIM.
        crop_readout: solve on the output's rows along the readout (H) plus
            ``READOUT_MARGIN`` rows each side, not on the whole (oversampled) field of view:
            the rows the output never shows are dropped before the iterations (about half
            the work for fastMRI's 2x readout oversampling). The data term of the kept rows
            is unchanged; TV sees a free (Neumann) edge ``READOUT_MARGIN`` rows outside the
            output. False: the whole field of view, the exact minimiser of the full problem.
    """

    name = "tv"
    needs_sens_maps = True

    def __init__(
        self,
        lam: float = 0.002,
        max_iters: int = 200,
        tol: float = 1e-4,
        progress: bool = False,
        tau: float | None = None,
        data_consistency: bool = False,
        crop_readout: bool = True,
    ) -> None:
        self.lam, self.tol = number("lam", lam, 0), number("tol", tol, 0)
        self.max_iters = positive_int("max_iters", max_iters)
        self.progress, self.tau = boolean("progress", progress), positive("tau", tau, optional=True)
        self.data_consistency = boolean("data_consistency", data_consistency)
        self.crop_readout = boolean("crop_readout", crop_readout)

    def __call__(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """Reconstruct a batch of slices.

        Args:
            masked_kspace: complex (B, C, H, W).
            mask: bool (B, W).
            sens_maps: complex (B, C, H, W); may be None when C = 1.
            crop_size: (h, w) of the output.

        Returns:
            real (B, h, w) magnitude (float32 for complex64 input): |x| for single-coil,
            RSS of the coil images S x for multi-coil. For the solver's diagnostics
            (iterations, convergence) call :func:`solve_tv`.
        """
        check_inputs(masked_kspace, mask, sens_maps)
        scale = data_scale(masked_kspace)  # of the whole field of view, cropped or not
        num_rows = masked_kspace.shape[-2]
        rows = (
            readout_rows(num_rows, int(crop_size[0]), READOUT_MARGIN)
            if self.crop_readout
            else (0, num_rows)
        )
        if rows != (0, num_rows):
            masked_kspace = crop_readout(masked_kspace, rows)
            sens_maps = None if sens_maps is None else sens_maps[..., rows[0] : rows[1], :]
        x = solve_tv(
            masked_kspace,
            mask,
            sens_maps,
            self.lam,
            self.max_iters,
            self.tol,
            tau=self.tau,
            progress=self.progress,
            scale=scale,
        ).image
        coils = x[:, None] if _is_ones(sens_maps) else sens_maps.to(x.dtype) * x[:, None]
        if self.data_consistency:
            m = mask.to(device=x.device, dtype=x.real.dtype)[:, None, None, :]  # (B, 1, 1, W)
            coils = ifft2c(masked_kspace * m + (1 - m) * fft2c(coils))
        image = rss(coils, dim=1)
        if rows != (0, num_rows):  # the output's rows, where the cut field of view has them
            top = (num_rows - int(crop_size[0])) // 2 - rows[0]
            image = image[..., top : top + int(crop_size[0]), :]
        return center_crop(image, crop_size).contiguous()

    def __repr__(self) -> str:
        return (
            f"TVReconstructor(lam={self.lam}, max_iters={self.max_iters}, tol={self.tol}, "
            f"tau={self.tau}, data_consistency={self.data_consistency}, "
            f"crop_readout={self.crop_readout})"
        )
