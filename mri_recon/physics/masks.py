"""Column (phase-encode) undersampling masks, a thin layer over ``fastmri.data.subsample``.

fastMRI's mask functions own a ``numpy.random.RandomState``; every call here passes an
explicit seed, which fastMRI applies inside ``temp_seed`` and then restores, so neither
numpy's global state nor the function's own state leaks between calls.

Per-file masks (validation and test) use fastMRI's convention
``seed = tuple(map(ord, fname))`` with the file *name* (not the path), so the same
volume gets the same mask here, in fastMRI's own transforms, and in published work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import torch
from fastmri.data import subsample

MASK_TYPES = ("random", "equispaced", "equispaced_fraction")

Seed = int | tuple[int, ...]


@dataclass(frozen=True)
class MaskSample:
    """One drawn column mask.

    Attributes:
        mask: bool tensor (W,), True where a column is sampled.
        acceleration: the acceleration R this mask was drawn for.
        center_fraction: the fraction of fully sampled center columns asked for.
        num_low_frequencies: number of fully sampled center columns.
    """

    mask: torch.Tensor
    acceleration: float
    center_fraction: float
    num_low_frequencies: int


def file_seed(fname: str | PurePath) -> tuple[int, ...]:
    """fastMRI's per-file mask seed: the code points of the file name (not the path)."""
    return tuple(map(ord, PurePath(fname).name))


class ColumnMaskFunc:
    """Center + outer columns, with fastMRI's sampling semantics.

    Args:
        mask_type: "random" (fastMRI ``RandomMaskFunc``: full center band plus each outer
            column with probability chosen so that W/R columns are sampled on average),
            "equispaced" (fastMRI ``EquiSpacedMaskFunc``: center band plus every R-th
            column, so slightly denser than 1/R), or "equispaced_fraction"
            (``EquispacedMaskFractionFunc``: spacing adjusted so the total is W/R).
        center_fractions: fraction of columns in the fully sampled center, one per
            acceleration (fastMRI ``mask.center_fractions``).
        accelerations: acceleration factors R; one (fraction, R) pair is chosen per call.
    """

    def __init__(
        self,
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[float] = (4,),
    ) -> None:
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask.mask_type={mask_type!r} is not one of {MASK_TYPES}")
        center_fractions = [float(c) for c in center_fractions]
        accelerations = [float(a) for a in accelerations]
        if not accelerations or len(center_fractions) != len(accelerations):
            raise ValueError(
                f"mask.center_fractions={center_fractions} and mask.accelerations="
                f"{accelerations} must be non-empty lists of equal length"
            )
        for r in accelerations:
            if not r >= 1:
                raise ValueError(f"mask.accelerations: acceleration {r} must be >= 1")
        for c in center_fractions:
            if not 0.0 < c < 1.0:
                raise ValueError(f"mask.center_fractions: center fraction {c} must be in (0, 1)")
        self.mask_type = mask_type
        self.center_fractions = center_fractions
        self.accelerations = accelerations
        cls = {
            "random": subsample.RandomMaskFunc,
            "equispaced": subsample.EquiSpacedMaskFunc,
            "equispaced_fraction": subsample.EquispacedMaskFractionFunc,
        }[mask_type]
        # fastMRI's equispaced functions slice with the acceleration (``mask[offset::R]``),
        # so integral accelerations are handed over as ints.
        fn_accels = [int(r) if r.is_integer() else r for r in accelerations]
        self._fn = cls(center_fractions=center_fractions, accelerations=fn_accels)

    def __call__(self, num_cols: int, seed: Seed) -> MaskSample:
        """Draw the mask for ``num_cols`` (W) columns with ``seed``, an int or a tuple of ints
        (e.g. :func:`file_seed`; required): a MaskSample with ``mask`` bool (W,)."""
        if seed is None:
            raise ValueError("a mask seed is required (pass an int, or file_seed(fname))")
        if int(num_cols) < 2:
            raise ValueError(f"num_cols must be >= 2, got {num_cols}")
        rng = self._fn.rng
        with subsample.temp_seed(rng, seed):
            center_fraction, acceleration = self._fn.choose_acceleration()
        mask, num_low = self._fn((1, int(num_cols), 1), offset=None, seed=seed)
        return MaskSample(
            mask=mask.reshape(-1) > 0,
            acceleration=float(acceleration),
            center_fraction=float(center_fraction),
            num_low_frequencies=int(num_low),
        )

    def __repr__(self) -> str:
        return (
            f"ColumnMaskFunc({self.mask_type!r}, center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations})"
        )


def apply_mask(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the unsampled columns, ``masked_kspace = kspace * mask``: complex (..., H, W) and a
    bool or float mask (W,), or (B, W) for a batch (B, C, H, W) -> complex (..., H, W)."""
    if mask.shape[-1] != kspace.shape[-1]:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not match k-space width "
            f"{kspace.shape[-1]} (kspace shape {tuple(kspace.shape)})"
        )
    m = mask.to(kspace.real.dtype)
    if m.ndim == 2 and kspace.ndim == 4:  # (B, W) -> (B, 1, 1, W)
        m = m[:, None, None, :]
    else:
        m = m.unsqueeze(-2)  # (..., 1, W)
    return kspace * m


def center_band(mask: torch.Tensor) -> tuple[int, int]:
    """The fully sampled center band of a bool (W,) column mask: (start, stop) of the longest
    run of sampled columns containing ``W // 2``, or (W // 2, W // 2) if that column is not
    sampled."""
    if mask.ndim != 1:
        raise ValueError(f"mask must be 1-D (W,), got shape {tuple(mask.shape)}")
    m = mask.bool().tolist()
    c = len(m) // 2
    if not m[c]:
        return (c, c)
    start, stop = c, c + 1
    while start > 0 and m[start - 1]:
        start -= 1
    while stop < len(m) and m[stop]:
        stop += 1
    return (start, stop)
