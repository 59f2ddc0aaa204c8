"""Column (phase-encode) undersampling masks: fastMRI's, variable-density and Poisson-disc.

Every mask has a fully sampled centre band of ``num_low_frequencies = round(W *
center_fraction)`` columns (placed as fastMRI places it) plus outer columns chosen by the
``mask_type``. One (center_fraction, acceleration) pair is drawn per call, as fastMRI does.
``docs/MASKS.md`` tabulates what ``accelerations`` and ``center_fractions`` mean for each type.

fastMRI's types (``random``, ``equispaced``, ``equispaced_fraction``, ``magic``,
``magic_fraction``) are ``fastmri.data.subsample``'s own functions. They own a
``numpy.random.RandomState``; every call passes an explicit seed, which fastMRI applies
inside ``temp_seed`` and then restores, so no random state leaks between calls. The types
of this module (``variable_density``, ``poisson``) draw from ``np.random.default_rng(seed)``
and take exactly ``round(W / R) - num_low_frequencies`` outer columns, so their acceleration
is R up to the rounding of W / R.

Per-file masks (validation and test) use fastMRI's convention
``seed = tuple(map(ord, fname))`` with the file *name* (not the path), so the same
volume gets the same mask here, in fastMRI's own transforms, and in published work.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import torch
from fastmri.data import subsample

from mri_recon import checks

FASTMRI_MASKS = {
    "random": subsample.RandomMaskFunc,
    "equispaced": subsample.EquiSpacedMaskFunc,
    "equispaced_fraction": subsample.EquispacedMaskFractionFunc,
    "magic": subsample.MagicMaskFunc,
    "magic_fraction": subsample.MagicMaskFractionFunc,
}
DENSITY_MASKS = ("variable_density", "poisson")
MASK_TYPES = (*FASTMRI_MASKS, *DENSITY_MASKS)
DENSITIES = ("polynomial", "gaussian")

Seed = int | tuple[int, ...]


@dataclass(frozen=True)
class MaskSample:
    """One drawn column mask.

    Attributes:
        mask: bool tensor (W,), True where a column is sampled.
        acceleration: the acceleration R this mask was drawn for (the config's).
        center_fraction: the fraction of fully sampled center columns asked for.
        num_low_frequencies: number of fully sampled center columns.
    """

    mask: torch.Tensor
    acceleration: float
    center_fraction: float
    num_low_frequencies: int

    @property
    def num_sampled(self) -> int:
        """Columns sampled, centre included."""
        return int(self.mask.sum())

    @property
    def mask_acceleration(self) -> float:
        """The true acceleration W / (columns sampled)."""
        return self.mask.numel() / max(self.num_sampled, 1)


def file_seed(fname: str | PurePath) -> tuple[int, ...]:
    """fastMRI's per-file mask seed: the code points of the file name (not the path)."""
    return tuple(map(ord, PurePath(fname).name))


def seed_label(seed: Seed) -> str:
    """A seed as written in tables: an int as itself, a tuple (a :func:`file_seed`) as the
    string its code points spell, i.e. the file name it was made from."""
    return str(int(seed)) if isinstance(seed, (int, np.integer)) else "".join(map(chr, seed))


class ColumnMaskFunc:
    """Center + outer columns; see ``docs/MASKS.md`` for the table of types.

    Args:
        mask_type: one of :data:`MASK_TYPES`: fastMRI's "random" (each outer column with
            the probability that gives W/R columns on average), "equispaced" (every R-th
            column besides the center, so denser than 1/R), "equispaced_fraction" (spacing
            adjusted so the total is about W/R), "magic" / "magic_fraction" (Defazio 2019:
            equispaced with the two halves of k-space offset, so conjugate symmetry fills
            the gaps; the "_fraction" variant adjusts the spacing to about W/R columns);
            or "variable_density" (outer columns drawn with inclusion probabilities that
            follow ``density``) and "poisson" (1-D Poisson disc: no two outer columns closer
            than ``min_gap``, thrown in an order weighted by ``density``), both with
            exactly ``round(W / R)`` columns in all.
        center_fractions: fraction of columns in the fully sampled center, one per
            acceleration (``num_low_frequencies = round(W * center_fraction)``).
        accelerations: acceleration factors R; one (fraction, R) pair is chosen per call.
        density: "polynomial" ``(1 - k)^p`` or "gaussian" ``exp(-k^2 / (2 sigma^2))`` of
            the distance k in [0, 1) from the centre column to the edge (default
            "polynomial"; variable_density and poisson only).
        p: polynomial power (> 0, default 2).
        sigma: Gaussian width as a fraction of the half-width (> 0, default 0.3).
        min_gap: poisson: minimum distance in columns between two outer columns
            (default 2).
    """

    def __init__(
        self,
        mask_type: str = "random",
        center_fractions: Sequence[float] = (0.08,),
        accelerations: Sequence[float] = (4,),
        density: str | None = None,
        p: float | None = None,
        sigma: float | None = None,
        min_gap: int | None = None,
    ) -> None:
        checks.one_of("mask_type", mask_type, MASK_TYPES)
        center_fractions = [float(c) for c in center_fractions]
        accelerations = [float(a) for a in accelerations]
        problem = _pairs_problem(mask_type, accelerations, center_fractions)
        if problem:
            raise ValueError(problem)
        self.mask_type = mask_type
        self.center_fractions = center_fractions
        self.accelerations = accelerations
        self.density, self.p, self.sigma, self.min_gap = _density_settings(
            mask_type,
            density,
            p,
            sigma,
            min_gap,
            list(zip(accelerations, center_fractions, strict=True)),
        )
        self._fn = None
        if mask_type in FASTMRI_MASKS:
            # fastMRI's equispaced functions slice with the acceleration (``mask[offset::R]``),
            # so integral accelerations are handed over as ints.
            fn_accels = [int(r) if r.is_integer() else r for r in accelerations]
            self._fn = FASTMRI_MASKS[mask_type](center_fractions, fn_accels)

    def __call__(self, num_cols: int, seed: Seed) -> MaskSample:
        """Draw the mask for ``num_cols`` (W) columns with ``seed``, an int or a tuple of ints
        (e.g. :func:`file_seed`; required): a MaskSample with ``mask`` bool (W,)."""
        if seed is None or int(num_cols) < 2:
            raise ValueError(
                f"a seed (an int, or file_seed(fname)) and num_cols >= 2 are required, got "
                f"seed={seed!r}, num_cols={num_cols}"
            )
        num_cols = int(num_cols)
        if self._fn is None:
            return self._density_mask(num_cols, seed)
        with subsample.temp_seed(self._fn.rng, seed):
            center_fraction, acceleration = self._fn.choose_acceleration()
        band = round(num_cols * center_fraction)
        if self.mask_type == "equispaced_fraction" and band * acceleration == num_cols:
            raise ValueError(  # fastMRI's spacing divides by band * R - W
                f"center_fractions: {center_fraction:g} at acceleration {acceleration:g} on "
                f"{num_cols} columns: the centre band ({band}) times R is W, which leaves "
                "equispaced_fraction no spacing; choose another centre fraction"
            )
        mask, num_low = self._fn((1, num_cols, 1), offset=None, seed=seed)
        return MaskSample(
            mask=mask.reshape(-1) > 0,
            acceleration=float(acceleration),
            center_fraction=float(center_fraction),
            num_low_frequencies=int(num_low),
        )

    def _density_mask(self, num_cols: int, seed: Seed) -> MaskSample:
        """variable_density / poisson: the centre band plus exactly
        ``round(W / R) - num_low`` outer columns."""
        rng = np.random.default_rng(seed if isinstance(seed, (int, np.integer)) else list(seed))
        choice = int(rng.integers(len(self.accelerations)))
        r, cf = self.accelerations[choice], self.center_fractions[choice]
        num_low = round(num_cols * cf)
        pad = (num_cols - num_low + 1) // 2  # fastMRI's placement of the centre band
        mask = np.zeros(num_cols, dtype=bool)
        mask[pad : pad + num_low] = True
        outer = np.flatnonzero(~mask)  # (W - num_low,)
        count = min(max(round(num_cols / r) - num_low, 0), len(outer))
        weights = self._weights(outer, num_cols)
        if self.mask_type == "variable_density":
            picked = outer[systematic_sample(inclusion_probabilities(weights, count), rng)]
        else:
            picked = poisson_disc(outer, weights, count, self.min_gap, num_cols, rng)
        mask[picked] = True
        return MaskSample(torch.from_numpy(mask), r, cf, num_low)

    def _weights(self, cols: np.ndarray, num_cols: int) -> np.ndarray:
        """The density at columns ``cols``: distance from the centre column W // 2, scaled
        to [0, 1) by the farthest column's distance + 1."""
        dist = np.abs(cols - num_cols // 2)
        k = dist / (max(num_cols // 2, num_cols - 1 - num_cols // 2) + 1)
        if self.density == "polynomial":
            w = (1 - k) ** self.p
        else:
            w = np.exp(-(k**2) / (2 * self.sigma**2))
        return np.maximum(w, np.finfo(float).tiny)

    def __repr__(self) -> str:
        extra = ""
        if self.mask_type in DENSITY_MASKS:
            shape = f"p={self.p}" if self.density == "polynomial" else f"sigma={self.sigma}"
            extra = f", density={self.density!r}, {shape}"
            extra += f", min_gap={self.min_gap}" if self.mask_type == "poisson" else ""
        return (
            f"ColumnMaskFunc({self.mask_type!r}, center_fractions={self.center_fractions}, "
            f"accelerations={self.accelerations}{extra})"
        )


def _pairs_problem(
    mask_type: str, accelerations: list[float], center_fractions: list[float]
) -> str | None:
    """What is wrong with the (acceleration, center fraction) pairs, naming the argument, or
    None."""
    if not accelerations or len(center_fractions) != len(accelerations):
        return (
            f"center_fractions: {center_fractions} and accelerations {accelerations} must be "
            "non-empty lists of equal length"
        )
    for r, c in zip(accelerations, center_fractions, strict=True):
        if not r >= 1:
            return f"accelerations: acceleration {r} must be >= 1"
        if mask_type in DENSITY_MASKS and not r > 1:
            return f"accelerations: acceleration {r} must be > 1 for {mask_type}"
        if mask_type in ("equispaced", "magic") and not r.is_integer():
            return (
                f"accelerations: {mask_type} samples every R-th column, so R must be an "
                f"integer, got {r}"
            )
        if not 0.0 < c < 1.0:
            return f"center_fractions: center fraction {c} must be in (0, 1)"
        if c * r >= 1:
            return (
                f"center_fractions: center fraction {c} at acceleration {r:g} requests more "
                "columns than the W/R sampled (center_fraction * acceleration must be < 1)"
            )
    return None


def _density_settings(
    mask_type: str,
    density: str | None,
    p: float | None,
    sigma: float | None,
    gap: int | None,
    pairs: list[tuple[float, float]],
) -> tuple[str | None, float | None, float | None, int | None]:
    """Defaults and checks of (density, p, sigma, min_gap): set only for the types using
    them; ``pairs`` are the (acceleration, center fraction) pairs a poisson ``min_gap`` must
    fit."""
    given = {"density": density, "p": p, "sigma": sigma, "min_gap": gap}
    users = {"min_gap": ("poisson",)}
    unused = [
        n
        for n, v in given.items()
        if v is not None and mask_type not in users.get(n, DENSITY_MASKS)
    ]
    if unused:
        raise ValueError(f"{unused[0]}: not used by mask_type={mask_type!r}")
    if mask_type not in DENSITY_MASKS:
        return None, None, None, None
    density = checks.one_of("density", "polynomial" if density is None else density, DENSITIES)
    p = checks.positive("p", 2.0 if p is None else p)
    sigma = checks.positive("sigma", 0.3 if sigma is None else sigma)
    if mask_type == "poisson":
        gap = checks.positive_int("min_gap", 2 if gap is None else gap)
        for r, c in pairs:
            spacing = (1 - c) / (1 / r - c)  # mean distance between outer columns
            if gap > spacing:
                raise ValueError(
                    f"min_gap: {gap} columns apart cannot fit the outer columns of {r:g}x "
                    f"with center fraction {c:g} (on average {spacing:.2f} apart)"
                )
    return density, p, sigma, gap


def inclusion_probabilities(weights: np.ndarray, count: int) -> np.ndarray:
    """Inclusion probabilities ``pi = min(1, c * weights)`` that sum to ``count``.

    The scale c is solved exactly (water-filling): the largest weights saturate at 1 and the
    rest share what is left in proportion to their weights.

    Args:
        weights: float (n,) > 0.
        count: 0 <= count <= n.

    Returns:
        float (n,) in [0, 1], summing to ``count``.
    """
    n = len(weights)
    if count >= n:
        return np.ones(n)
    order = np.argsort(-weights, kind="stable")
    w = weights[order]  # descending
    tail = np.cumsum(w[::-1])[::-1]  # tail[k] = sum of w[k:]
    scale = (count - np.arange(n)) / tail  # with the k largest saturated
    k = int(np.argmax(scale * w <= 1))  # fewest saturated for which the rest stay <= 1
    pi = np.empty(n)
    pi[order] = np.concatenate([np.ones(k), np.minimum(scale[k] * w[k:], 1.0)])
    return pi


def systematic_sample(pi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exactly ``round(sum(pi))`` distinct indices, index i drawn with probability ``pi[i]``:
    systematic sampling (Madow 1949) over a random permutation.

    Args:
        pi: float (n,) in [0, 1] with an integral sum.
        rng: the generator.

    Returns:
        int (round(sum(pi)),) indices.
    """
    count = round(float(pi.sum()))
    order = rng.permutation(len(pi))
    edges = np.cumsum(pi[order])  # index order[j] owns [edges[j-1], edges[j]), length <= 1
    points = rng.random() + np.arange(count)  # one point per unit: each interval gets <= 1
    return order[np.minimum(np.searchsorted(edges, points, side="right"), len(pi) - 1)]


def poisson_disc(
    cols: np.ndarray,
    weights: np.ndarray,
    count: int,
    min_gap: int,
    num_cols: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """1-D variable-density Poisson disc by dart throwing: ``count`` of ``cols``, no two
    closer than ``min_gap``.

    Darts are the candidate columns in a random order in which heavier ``weights`` come
    earlier (sequential sampling without replacement in proportion to the weights); a dart
    is kept if no kept column is within ``min_gap - 1`` of it, until ``count`` are kept. If a
    full pass keeps fewer (possible only when ``2 * min_gap - 1`` exceeds the mean spacing),
    further passes with the gap reduced by one complete the count.

    Args:
        cols: int (n,) candidate columns.
        weights: float (n,) > 0.
        count: columns to keep (<= n).
        min_gap: minimum distance between kept columns (>= 1).
        num_cols: W.
        rng: the generator.

    Returns:
        int (count,) kept columns.
    """
    darts = cols[np.argsort(rng.exponential(size=len(cols)) / weights, kind="stable")].tolist()
    taken = bytearray(num_cols)
    kept = []
    for gap in range(min_gap, 0, -1):
        for c in darts:
            if len(kept) == count:
                return np.array(kept, dtype=np.int64)
            if not any(taken[max(c - gap + 1, 0) : c + gap]):
                taken[c] = 1
                kept.append(c)
    return np.array(kept, dtype=np.int64)


def apply_mask(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero the unsampled columns, ``masked_kspace = kspace * mask``: complex (..., H, W) and a
    bool or float mask (W,), or (B, W) for a batch (B, C, H, W) -> complex (..., H, W)."""
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
    m = mask.bool().tolist()  # (W,)
    c = len(m) // 2
    if not m[c]:
        return (c, c)
    start, stop = c, c + 1
    while start > 0 and m[start - 1]:
        start -= 1
    while stop < len(m) and m[stop]:
        stop += 1
    return (start, stop)


# The columns that describe the mask a volume or sample was given, in every table that lists
# masks (``per_volume.csv``, training's ``masks.csv``, ``provenance.json``)
MASK_COLUMNS = ("mask_type", "mask_seed", "mask_num_sampled", "num_low_frequencies", "mask_hash")


def mask_hash(mask: torch.Tensor | np.ndarray) -> str:
    """A short hash of a column mask: the first 12 hex digits of the sha256 of its columns
    as bytes 0/1 (so equal masks of equal width hash equal, on any platform).

    Args:
        mask: bool (W,) array or tensor.
    """
    columns = np.asarray(mask, dtype=bool).reshape(-1).astype(np.uint8)
    return hashlib.sha256(columns.tobytes()).hexdigest()[:12]


def mask_columns(
    mask: torch.Tensor, mask_type: str, seed: str, num_low_frequencies: int
) -> dict[str, str | int]:
    """The :data:`MASK_COLUMNS` of one column mask.

    Args:
        mask: bool (W,).
        mask_type: the mask function's type, or "stored" for a file's own mask.
        seed: the seed as :func:`seed_label` writes it ("" for a stored mask).
        num_low_frequencies: the fully sampled centre columns.
    """
    return {
        "mask_type": mask_type,
        "mask_seed": seed,
        "mask_num_sampled": int(mask.sum()),
        "num_low_frequencies": int(num_low_frequencies),
        "mask_hash": mask_hash(mask),
    }
