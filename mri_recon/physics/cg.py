"""Conjugate gradients on ``(A^H A + lam I) x = b``, batched: the one CG of the package
(CG-SENSE's solve, MoDL's data consistency and its implicit gradient).

Every step is a tensor op over the batch (CPU or GPU); alpha and beta are per slice, so a batch
equals the slices solved one by one. A slice is frozen once ``||r_k|| <= tol ||b||`` or its
residual reaches float precision (where it stops falling and alpha would be 0 / 0). Whether
every slice is frozen is asked every ``CHECK_EVERY`` iterations, the only host
synchronisation; frozen slices do not move, so the cadence changes the work, not the result.
Differentiable: with ``lam`` or ``b`` requiring grad, autograd runs through the iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

CHECK_EVERY = 5
Normal = Callable[[torch.Tensor], torch.Tensor]


def sq_norms(z: torch.Tensor) -> torch.Tensor:
    """Squared L2 norm of each slice of complex z (B, ...) -> real (B,)."""
    return torch.view_as_real(z).flatten(1).square().sum(dim=1)


def _cdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Re <a, b> per slice for complex (B, ...) -> real (B,)."""
    return (torch.view_as_real(a).flatten(1) * torch.view_as_real(b).flatten(1)).sum(dim=1)


@dataclass(frozen=True)
class CGResult:
    """Output of :func:`conjugate_gradient`.

    Attributes:
        image: complex (B, H, W) solution.
        iterations: int64 (B,) iterations run per slice.
        residual: real (B,) final ``||b - (A^H A + lam I) x|| / ||b||``.
    """

    image: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor


def conjugate_gradient(
    normal: Normal,
    rhs: torch.Tensor,
    lam: float | torch.Tensor,
    iterations: int,
    tol: float = 0.0,
    progress: bool = False,
) -> CGResult:
    """Solve ``(normal + lam I) x = rhs`` per slice by conjugate gradients from x = 0.

    Args:
        normal: Hermitian positive semi-definite ``A^H A``, complex (B, H, W) -> (B, H, W),
            e.g. :meth:`mri_recon.physics.operators.SenseOperator.normal`.
        rhs: complex (B, H, W) b.
        lam: Tikhonov weight >= 0, a float or a real 0-d tensor (MoDL's learned weight).
        iterations: the most CG iterations.
        tol: relative residual at which a slice is frozen (0: only at float precision).
        progress: a tqdm bar over iterations.

    Returns:
        CGResult with the complex (B, H, W) solution.
    """
    eps = torch.finfo(rhs.real.dtype).eps
    tiny = torch.finfo(rhs.real.dtype).tiny
    b_sq = sq_norms(rhs)
    stop = max(tol, 4 * eps) ** 2 * b_sq  # (B,)
    x, r, p = torch.zeros_like(rhs), rhs, rhs
    rs = b_sq
    iters = torch.zeros(rhs.shape[0], dtype=torch.int64, device=rhs.device)
    done = b_sq <= 0  # b = 0: x = 0 is the solution
    for k in tqdm(range(iterations), desc="CG", disable=not progress, leave=False):
        q = normal(p) + lam * p
        alpha = torch.where(done, 0.0, rs / _cdot(p, q).clamp_min(tiny))[:, None, None]
        x = x + alpha * p
        r = r - alpha * q
        rs_new = sq_norms(r)
        iters += (~done).long()
        done = done | (rs_new <= stop)
        if (k + 1) % CHECK_EVERY == 0 and bool(done.all()):  # the one host sync
            break
        beta = torch.where(done, 0.0, rs_new / rs.clamp_min(tiny))[:, None, None]
        p = r + beta * p
        rs = torch.where(done, rs, rs_new)
    residual = (sq_norms(r) / b_sq.clamp_min(tiny)).sqrt()
    return CGResult(image=x, iterations=iters, residual=residual)
