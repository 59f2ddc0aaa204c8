"""Linear measurement operators (deepinv-like): the SENSE forward model; finite differences.

Operators are immutable objects with ``A`` and ``A_adjoint``; algorithms compose them.
Everything is pure torch on native complex tensors, batched over slices, on whatever
device and dtype the inputs live on.
"""

from __future__ import annotations

import torch

from mri_recon.physics.fft import fft2c, ifft2c

# ||grad2d||^2 <= 8 for forward differences in two directions (4 per direction).
GRAD_NORM_SQ = 8.0


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Complex inner product <a, b> = sum conj(a) b over everything (a 0-d tensor)."""
    return torch.vdot(a.reshape(-1), b.reshape(-1))


class SenseOperator:
    """Forward model y = M F S x (SENSE), batched over slices.

    ``S`` multiplies the image by each coil's sensitivity, ``F`` is the centered orthonormal
    2-D FFT and ``M`` keeps the sampled k-space points. With ``sum_c |S_c|^2 <= 1`` and F
    unitary, ``||A|| <= 1``. Single-coil data is one coil of ones.

    Args:
        sens_maps: complex (B, C, H, W) coil sensitivities.
        mask: bool, the sampled points: a column mask (B, W) (every row of a sampled column),
            or a point mask (B, 1, W) or (B, H, W) (e.g. a self-supervised split of the
            acquired points), shared by all coils.
    """

    def __init__(self, sens_maps: torch.Tensor, mask: torch.Tensor) -> None:
        b, _, h, w = sens_maps.shape if sens_maps.ndim == 4 else (None,) * 4
        if (
            not sens_maps.is_complex()
            or sens_maps.ndim != 4
            or mask.shape not in ((b, w), (b, 1, w), (b, h, w))
        ):
            raise ValueError(
                "SenseOperator needs sens_maps complex (B, C, H, W) and mask (B, W), (B, 1, W) "
                f"or (B, H, W), got sens_maps {sens_maps.dtype} {tuple(sens_maps.shape)}, "
                f"mask {tuple(mask.shape)}"
            )
        self._sens_maps = sens_maps
        points = mask if mask.ndim == 3 else mask[:, None, :]  # (B, 1|H, W)
        # (B, 1, 1|H, W): broadcasts over coils (and rows for a column mask).
        self._mask = points.to(device=sens_maps.device, dtype=sens_maps.real.dtype)[:, None]

    @classmethod
    def single_coil(
        cls, mask: torch.Tensor, shape: tuple[int, int], dtype: torch.dtype = torch.complex64
    ) -> SenseOperator:
        """Single-coil operator y = M F x: one coil of ones.

        Args:
            mask: bool (B, W), (B, 1, W) or (B, H, W).
            shape: (H, W) of the image.
            dtype: complex dtype of the maps (and of the data the operator expects).

        Returns:
            SenseOperator with sens_maps (B, 1, H, W) all ones (an expanded view, no copy).
        """
        h, w = int(shape[0]), int(shape[1])
        ones = torch.ones((), dtype=dtype, device=mask.device).expand(mask.shape[0], 1, h, w)
        return cls(ones, mask)

    @property
    def sens_maps(self) -> torch.Tensor:
        """complex (B, C, H, W)."""
        return self._sens_maps

    @property
    def mask(self) -> torch.Tensor:
        """bool (B, W) for a column mask, (B, 1|H, W) for a point mask: as it was given
        (a (B, 1, W) point mask comes back as the columns (B, W))."""
        points = self._mask[:, 0] > 0  # (B, 1|H, W)
        return points[:, 0] if points.shape[1] == 1 else points

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Forward: y = M F S x, complex (B, H, W) -> masked k-space (B, C, H, W)."""
        return fft2c(self._sens_maps * x[:, None]) * self._mask

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint: x = sum_c conj(S_c) F^H M y_c, complex (B, C, H, W) -> (B, H, W)."""
        return (self._sens_maps.conj() * ifft2c(y * self._mask)).sum(dim=1)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Normal operator A^H A x = S^H F^H M F S x (M is a projection, so applied once):
        complex (B, H, W) -> (B, H, W).

        With a column mask the FFT along H cancels (M acts on W only), and so do the
        centering shifts along W: a cyclic shift is a phase ramp in k-space, which commutes
        with M and cancels against its conjugate, so ``F_c^H M F_c = F^H ifftshift(M) F``
        with plain 1-D FFTs along W."""
        if self._mask.shape[-2] != 1:  # a point mask: the 2-D transforms
            return self.A_adjoint(self.A(x))
        mask = torch.fft.ifftshift(self._mask, dim=-1)  # (B, 1, 1, W)
        coils = torch.fft.fft(self._sens_maps * x[:, None], dim=-1, norm="ortho")  # (B, C, H, W)
        coils = torch.fft.ifft(coils * mask, dim=-1, norm="ortho")
        return (self._sens_maps.conj() * coils).sum(dim=1)

    def adjointness_error(self, generator: torch.Generator) -> float:
        """``|<A x, y> - <x, A^H y>| / (||A x|| ||y||)`` for random complex x (B, H, W) and
        y (B, C, H, W) drawn by ``generator`` (on its device); ~1e-7 for float32."""
        s = self._sens_maps
        draw = {"generator": generator, "dtype": s.dtype, "device": generator.device}
        x = torch.randn((s.shape[0], *s.shape[2:]), **draw).to(s.device)
        y = torch.randn(tuple(s.shape), **draw).to(s.device)
        ax = self.A(x)
        lhs, rhs = _inner(ax, y), _inner(x, self.A_adjoint(y))
        scale = torch.linalg.vector_norm(ax) * torch.linalg.vector_norm(y)
        return float((lhs - rhs).abs() / scale.clamp_min(torch.finfo(scale.dtype).tiny))


def point_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor | None:
    """A sampling mask as bool (B, 1, 1|H, W), broadcastable to k-space ``like`` (B, C, H, W):
    a column mask (B, W) or a mask of points (B, 1|H, W); None if it fits neither."""
    b, _, h, w = like.shape
    if mask.shape == (b, w):
        return mask.to(device=like.device, dtype=torch.bool)[:, None, None, :]
    if mask.ndim == 3 and mask.shape[0] == b and mask.shape[1] in (1, h) and mask.shape[2] == w:
        return mask.to(device=like.device, dtype=torch.bool)[:, None]
    return None


def grad2d(x: torch.Tensor) -> torch.Tensor:
    """Forward differences, Neumann boundary (0 past the last row/column): real or complex
    (B, H, W) -> (B, 2, H, W) of the same dtype, [:, 0] along H (rows), [:, 1] along W."""
    g = torch.zeros((x.shape[0], 2, *x.shape[1:]), dtype=x.dtype, device=x.device)
    g[:, 0, :-1, :] = x[:, 1:, :] - x[:, :-1, :]
    g[:, 1, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    return g


def div2d(p: torch.Tensor) -> torch.Tensor:
    """Discrete divergence, the negative adjoint of :func:`grad2d` (<grad x, p> = -<x, div p>):
    real or complex (B, 2, H, W) -> (B, H, W) of the same dtype."""
    py, px = p[:, 0], p[:, 1]
    d = torch.zeros_like(py)
    # Rows: p_y[i] - p_y[i-1], with p_y[-1] = 0 and p_y[H-1] treated as 0 (Neumann).
    d[:, :-1, :] += py[:, :-1, :]
    d[:, 1:, :] -= py[:, :-1, :]
    d[:, :, :-1] += px[:, :, :-1]
    d[:, :, 1:] -= px[:, :, :-1]
    return d
