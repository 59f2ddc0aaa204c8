"""MoDL: its CG against a dense solve, the implicit gradient against autograd of the dense
solve, data consistency under point masks, the contract, and its bad arguments."""

from __future__ import annotations

import pytest
import torch

from mri_recon.contract import Trainable, TrainingBatch
from mri_recon.models.modl import MoDL
from mri_recon.physics.cg import conjugate_gradient
from mri_recon.physics.operators import SenseOperator

B, C, H, W = 2, 3, 6, 5  # non-square, odd width; n = 30 unknowns per slice


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _op(mask: torch.Tensor, dtype: torch.dtype = torch.complex128) -> SenseOperator:
    maps = torch.randn(B, C, H, W, dtype=dtype, generator=_gen(1))
    return SenseOperator(maps, mask)


def _dense(op: SenseOperator, lam: torch.Tensor) -> torch.Tensor:
    """The explicit (A^H A + lam I) of each slice, (B, n, n), column j = normal(e_j)."""
    n = H * W
    basis = torch.eye(n, dtype=op.sens_maps.dtype).reshape(n, 1, H, W).expand(n, B, H, W)
    cols = torch.stack([op.normal(e) for e in basis], dim=-1).reshape(B, n, n)  # (B, n, n)
    return cols + lam * torch.eye(n, dtype=cols.dtype)


def _dense_solve(op: SenseOperator, rhs: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    return torch.linalg.solve(_dense(op, lam), rhs.reshape(B, -1, 1)).reshape(B, H, W)


@pytest.mark.parametrize("mask_kind", ["columns", "points"])
def test_cg_solves_the_normal_equations_to_tolerance(mask_kind: str) -> None:
    cols = torch.rand(B, W, generator=_gen(2)) > 0.5
    points = torch.rand(B, H, W, generator=_gen(2)) > 0.5
    op = _op(cols if mask_kind == "columns" else points)
    rhs = torch.randn(B, H, W, dtype=torch.complex128, generator=_gen(3))
    lam = torch.tensor(0.05, dtype=torch.float64)
    exact = _dense_solve(op, rhs, lam)
    x = conjugate_gradient(op.normal, rhs, lam, iterations=200, tol=1e-12).image
    residual = torch.linalg.vector_norm(op.normal(x) + lam * x - rhs) / torch.linalg.vector_norm(
        rhs
    )
    assert residual < 1e-10
    torch.testing.assert_close(x, exact, rtol=0, atol=1e-8 * float(exact.abs().max()))
    # a few iterations are not the solution (the check can fail), and tol stops it early
    few = conjugate_gradient(op.normal, rhs, lam, iterations=3).image
    assert (few - exact).abs().max() > 1e-3 * exact.abs().max()
    loose = conjugate_gradient(op.normal, rhs, lam, iterations=200, tol=1e-2).image
    loose_res = torch.linalg.vector_norm(op.normal(loose) + lam * loose - rhs, dim=(-2, -1))
    assert (loose_res <= 1e-2 * torch.linalg.vector_norm(rhs, dim=(-2, -1))).all()
    assert (loose - exact).abs().max() > 1e-8 * exact.abs().max()


@pytest.mark.parametrize("dc_gradient", ["implicit", "unrolled"])
def test_dc_gradient_matches_the_dense_solve(dc_gradient: str) -> None:
    """d loss / d rhs and d loss / d lam of the CG solve = those of torch.linalg.solve."""
    op = _op(torch.rand(B, H, W, generator=_gen(4)) > 0.4)
    net = MoDL(num_unrolls=1, chans=2, cg_iterations=100, cg_tol=1e-13, lam_init=0.3)
    net.dc_gradient = dc_gradient
    lam = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    rhs = torch.randn(B, H, W, dtype=torch.complex128, generator=_gen(5), requires_grad=True)
    w = torch.randn(B, H, W, dtype=torch.complex128, generator=_gen(6))

    def loss(x: torch.Tensor) -> torch.Tensor:
        return (w.conj() * x).real.sum() + x.abs().square().sum()

    got = torch.autograd.grad(loss(net.solve(op, rhs, lam)), (rhs, lam))
    want = torch.autograd.grad(loss(_dense_solve(op, rhs, lam)), (rhs, lam))
    for g, ref in zip(got, want, strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-8)
    assert abs(float(want[1])) > 1  # lam's gradient is not trivially zero


def test_point_mask_data_consistency_agrees_with_its_column_form() -> None:
    """A (B, 1, W) and a (B, H, W) mask of the same columns give the column mask's
    operator; a point mask keeps exactly its points."""
    cols = torch.rand(B, W, generator=_gen(7)) > 0.5
    x = torch.randn(B, H, W, dtype=torch.complex64, generator=_gen(8))
    ref = _op(cols, torch.complex64)
    for mask in (cols[:, None, :], cols[:, None, :].expand(B, H, W)):
        op = SenseOperator(ref.sens_maps, mask)
        torch.testing.assert_close(op.A(x), ref.A(x))
        torch.testing.assert_close(op.normal(x), ref.normal(x))
    points = torch.rand(B, H, W, generator=_gen(9)) > 0.5
    op = SenseOperator(ref.sens_maps, points)
    y = op.A(x)  # (B, C, H, W)
    assert (y[~points[:, None].expand_as(y)] == 0).all()
    assert (y[points[:, None].expand_as(y)] != 0).all()
    assert torch.equal(op.mask, points)
    assert op.adjointness_error(_gen(10)) < 1e-5
    with pytest.raises(ValueError, match=r"mask \(B, W\), \(B, 1, W\) or \(B, H, W\)"):
        SenseOperator(ref.sens_maps, points[:, :-1])


def _tiny_batch(coils: int, points: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = 20, 13
    kspace = torch.randn(2, coils, h, w, dtype=torch.complex64, generator=_gen(11))
    mask = torch.zeros(2, w, dtype=torch.bool)
    mask[:, ::2] = True
    mask[:, 5:8] = True
    if points:
        keep = torch.rand(2, h, w, generator=_gen(12)) > 0.3
        keep[:, :, 5:8] = True  # the calibration columns stay whole
        pmask = mask[:, None, :] & keep
        return kspace * pmask[:, None], pmask
    return kspace * mask[:, None, None], mask


@pytest.mark.parametrize("coils, points", [(4, False), (4, True), (1, False), (1, True)])
def test_loss_terms_are_the_reconstruction_and_train(coils: int, points: bool) -> None:
    torch.manual_seed(0)
    challenge = "multicoil" if coils > 1 else "singlecoil"
    net = MoDL(num_unrolls=2, chans=4, num_layers=3, cg_iterations=4, challenge=challenge)
    assert isinstance(net, Trainable) and net.name == "modl"
    kspace, mask = _tiny_batch(coils, points)
    target = torch.rand(2, 12, 11)
    batch = TrainingBatch(mask, target, target.amax(dim=(-2, -1)), masked_kspace=kspace)
    terms = net.loss_terms(batch)
    assert terms.pred.shape == (2, 12, 11) and terms.recon is terms.pred
    assert terms.pred_kspace.shape == kspace.shape and terms.ref_kspace is kspace
    terms.pred.mean().backward()
    assert net.log_lam.grad is not None and net.log_lam.grad != 0
    assert all(p.grad is not None for p in net.denoiser.parameters())
    if not points:  # the contract's call is the same reconstruction
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(
                net.loss_terms(batch).recon, net(kspace, mask, None, (12, 11))
            )


def test_crop_readout_is_exact_data_consistency_for_the_cropped_rows() -> None:
    """With the denoiser at the identity the output does not depend on crop_readout (the
    readout is fully sampled), and the maps handed in are cropped with the k-space."""
    kspace, mask = _tiny_batch(4)
    maps = torch.randn_like(kspace)
    outs = []
    for crop in (False, True):
        torch.manual_seed(0)
        net = MoDL(2, 4, 3, cg_iterations=60, cg_tol=1e-7, norm="none", identity_init=True)
        net.crop_readout = crop
        with torch.no_grad():
            outs.append(net(kspace, mask, maps, (8, 11)))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5 * float(outs[0].max()))


def test_the_wrong_challenge_is_refused() -> None:
    kspace, mask = _tiny_batch(1)
    with pytest.raises(ValueError, match=r"MoDL\(challenge='multicoil'\) got k-space with 1 coil"):
        MoDL(num_unrolls=1, chans=2)(kspace, mask, None, (8, 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lam_init": -0.05}, r"lam_init: must be a number in \(0, inf\), got -0.05"),
        ({"lam_init": 0}, r"lam_init: must be"),
        ({"num_unrolls": 0}, r"num_unrolls: must be"),
        ({"cg_iterations": 0}, r"cg_iterations: must be"),
        ({"cg_tol": 1.0}, r"cg_tol: must be"),
        ({"num_layers": 1}, r"num_layers: must be"),
        ({"norm": "batchnorm"}, r"norm: must be one of"),
        ({"dc_gradient": "manual"}, r"dc_gradient: must be one of"),
        ({"challenge": "knee"}, r"challenge: must be one of"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MoDL(**kwargs)
