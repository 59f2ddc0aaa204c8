"""SENSE operator and finite differences: adjointness, normal operator, single-coil case."""

from __future__ import annotations

import pytest
import torch

from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.operators import (
    GRAD_NORM_SQ,
    SenseOperator,
    div2d,
    grad2d,
)

B, C, H, W = 2, 3, 10, 7


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _op(dtype: torch.dtype = torch.complex64) -> SenseOperator:
    maps = torch.randn(B, C, H, W, dtype=dtype, generator=_gen(1))
    mask = torch.rand(B, W, generator=_gen(2)) > 0.5
    return SenseOperator(maps, mask)


def test_sense_adjointness() -> None:
    assert _op().adjointness_error(_gen(3)) < 1e-5
    assert _op(torch.complex128).adjointness_error(_gen(3)) < 1e-12


def test_adjointness_error_detects_a_wrong_adjoint() -> None:
    class Broken(SenseOperator):
        def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # drops the conjugate
            return (self.sens_maps * ifft2c(y * self._mask)).sum(dim=1)

    op = _op()
    assert Broken(op.sens_maps, op.mask).adjointness_error(_gen(3)) > 1e-2


def test_forward_matches_definition() -> None:
    op = _op()
    x = torch.randn(B, H, W, dtype=torch.complex64, generator=_gen(4))
    y = op.A(x)
    assert y.shape == (B, C, H, W)
    ref = fft2c(op.sens_maps * x[:, None]) * op.mask[:, None, None, :]
    torch.testing.assert_close(y, ref)
    unsampled = ~op.mask[:, None, None, :].expand_as(y)
    assert unsampled.any() and bool((y[unsampled] == 0).all())
    torch.testing.assert_close(op.normal(x), op.A_adjoint(op.A(x)))


def test_single_coil_is_masked_fft_and_normal_is_projection() -> None:
    mask = torch.rand(B, W, generator=_gen(5)) > 0.4
    op = SenseOperator.single_coil(mask, (H, W))
    assert op.sens_maps.shape == (B, 1, H, W)
    x = torch.randn(B, H, W, dtype=torch.complex64, generator=_gen(6))
    torch.testing.assert_close(op.A(x)[:, 0], fft2c(x) * mask[:, None, :])
    nx = op.normal(x)
    torch.testing.assert_close(op.normal(nx), nx, rtol=1e-5, atol=1e-5)  # A^H A idempotent
    assert op.adjointness_error(_gen(7)) < 1e-5


def test_normalised_maps_give_operator_norm_one() -> None:
    maps = torch.randn(1, C, H, W, dtype=torch.complex64, generator=_gen(8))
    maps = maps / torch.sqrt((maps.abs() ** 2).sum(dim=1, keepdim=True))
    op = SenseOperator(maps, torch.ones(1, W, dtype=torch.bool))
    x = torch.randn(1, H, W, dtype=torch.complex64, generator=_gen(9))
    torch.testing.assert_close(op.normal(x), x, rtol=1e-5, atol=1e-5)  # full sampling: S^H S = I


def test_operator_does_not_mutate() -> None:
    op = _op()
    maps, mask = op.sens_maps.clone(), op.mask.clone()
    x = torch.randn(B, H, W, dtype=torch.complex64, generator=_gen(10))
    op.normal(x)
    op.adjointness_error(_gen(11))
    assert torch.equal(op.sens_maps, maps) and torch.equal(op.mask, mask)


def test_bad_shapes_name_the_tensor() -> None:
    op = _op()
    with pytest.raises(ValueError, match=rf"mask \({B}, {W + 1}\)"):
        SenseOperator(op.sens_maps, torch.ones(B, W + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs sens_maps complex .* got sens_maps torch.float32"):
        SenseOperator(op.sens_maps.real, op.mask)


def test_gradient_adjointness_and_norm() -> None:
    x = torch.randn(B, H, W, dtype=torch.complex64, generator=_gen(13))
    p = torch.randn(B, 2, H, W, dtype=torch.complex64, generator=_gen(14))
    lhs = torch.vdot(grad2d(x).reshape(-1), p.reshape(-1))
    rhs = -torch.vdot(x.reshape(-1), div2d(p).reshape(-1))
    torch.testing.assert_close(lhs, rhs, rtol=1e-4, atol=1e-3)
    # Power iteration: ||grad||^2 approaches but never exceeds 8.
    v = x
    for _ in range(200):
        v = -div2d(grad2d(v))
        v = v / torch.linalg.vector_norm(v)
    est = torch.linalg.vector_norm(-div2d(grad2d(v))).item()
    assert 0.7 * GRAD_NORM_SQ < est <= GRAD_NORM_SQ


def test_gradient_values() -> None:
    x = torch.tensor([[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]])  # (1, 2, 3)
    g = grad2d(x)
    torch.testing.assert_close(g[0, 0], torch.tensor([[2.0, 1.0, -1.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(g[0, 1], torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]))
    assert torch.equal(grad2d(torch.ones(1, 4, 5)), torch.zeros(1, 2, 4, 5))
