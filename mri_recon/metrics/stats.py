"""Summaries over volumes: mean, std and a 95% bootstrap interval, per method and
acceleration, split by acquisition; paired differences of every method against a reference.

The unit of resampling is the *volume* (fastMRI reports means over volumes). Intervals are
percentile bootstrap intervals of the mean; all randomness comes from
``numpy.random.default_rng(seed)``, never from numpy's global state, so a summary is
reproducible from its seed. Paired differences resample volumes, keeping each volume's
pair together, which is what makes them much tighter than comparing two marginal intervals.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mri_recon import checks

ALL = "all"  # the acquisition label of the pooled group


@dataclass(frozen=True)
class Interval:
    """Mean, spread and bootstrap interval of one metric over volumes.

    Attributes:
        n: number of volumes.
        mean: sample mean.
        std: sample standard deviation (ddof=1); NaN for a single volume.
        ci_low: lower end of the bootstrap interval of the mean.
        ci_high: upper end of the bootstrap interval of the mean.
    """

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready dict; NaN (undefined std) becomes None."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean.

    Args:
        values: float (n,) per-volume values, n >= 1, all finite.
        confidence: coverage of the interval, in (0, 1).
        num_resamples: bootstrap resamples (volumes drawn with replacement).
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        (low, high); (x, x) for a single value.
    """
    x = _as_values(values)
    confidence = checks.number("confidence", confidence, 0, 1, open_low=True, open_high=True)
    num_resamples = checks.positive_int("num_resamples", num_resamples)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(num_resamples, x.size))  # (num_resamples, n)
    means = x[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def describe(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> Interval:
    """Mean, std (ddof=1) and bootstrap interval of ``values`` (n,)."""
    x = _as_values(values)
    low, high = bootstrap_ci(x, confidence=confidence, num_resamples=num_resamples, seed=seed)
    std = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return Interval(n=int(x.size), mean=float(np.mean(x)), std=std, ci_low=low, ci_high=high)


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(
            f"values must be finite and not empty, got {x[~np.isfinite(x)][:3].tolist()}"
        )
    return x


def _groups(
    rows: Iterable[Mapping[str, Any]], keys: Sequence[str], split_key: str
) -> dict[tuple, list[Mapping[str, Any]]]:
    """Rows grouped by ``keys`` + (acquisition), each row also counted in the ALL group.

    Groups are ordered by each key's values in order of first appearance (methods in the
    order they were run), numbers ascending, and acquisition "all" first.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    first_seen: dict[Any, int] = {}
    for row in rows:
        base = tuple(row[k] for k in keys)
        for value in (*base, row[split_key]):
            first_seen.setdefault(value, len(first_seen))
        groups[base + (ALL,)].append(row)
        groups[base + (row[split_key],)].append(row)

    def order(value: Any) -> tuple[int, float]:
        if value == ALL:
            return (0, 0.0)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (1, float(value))
        return (2, float(first_seen[value]))

    return dict(sorted(groups.items(), key=lambda kv: tuple(order(v) for v in kv[0])))


def summarize(
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    keys: Sequence[str] = ("method", "acceleration"),
    split_key: str = "acquisition",
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per group (``keys`` and acquisition, plus acquisition "all"), an :class:`Interval`
    of each metric over the rows (one row per volume and method).

    Args:
        rows: mappings holding ``keys``, ``split_key`` and float ``metrics``.
        metrics: the metric columns to summarise, e.g. ("nmse", "psnr", "ssim").
        keys: grouping columns.
        split_key: the column split on; its value "all" pools every row.
        confidence, num_resamples, seed: see :func:`bootstrap_ci`.

    Returns:
        One dict per group: the ``keys`` values, ``split_key``, ``n`` and, per metric,
        an :class:`Interval`.
    """
    out = []
    for group, members in _groups(rows, keys, split_key).items():
        entry: dict[str, Any] = dict(zip([*keys, split_key], group, strict=False))
        entry["n"] = len(members)
        for metric in metrics:
            entry[metric] = describe(
                [m[metric] for m in members],
                confidence=confidence,
                num_resamples=num_resamples,
                seed=seed,
            )
        out.append(entry)
    return out


def paired_differences(
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    reference: str = "zero_filled",
    pair_key: str = "fname",
    method_key: str = "method",
    keys: Sequence[str] = ("acceleration",),
    split_key: str = "acquisition",
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Per-volume differences ``method - reference`` of every other method, summarised.

    A row of a method is paired with the reference's row of the same ``pair_key`` (volume)
    and ``keys`` (acceleration); volumes that lack a partner are left out.

    Args:
        rows: mappings with ``method_key``, ``pair_key``, ``keys``, ``split_key``, metrics.
        metrics: metric columns to difference.
        reference: the method subtracted (default zero-filled).
        pair_key, method_key: the volume and method columns.
        keys, split_key: grouping as in :func:`summarize` (the method is added to ``keys``).
        confidence, num_resamples, seed: see :func:`bootstrap_ci`.

    Returns:
        One dict per (method, keys, acquisition) group, like :func:`summarize`, with an
        extra ``reference`` entry; each metric's :class:`Interval` describes the paired
        differences. Empty if ``reference`` has no rows.
    """
    rows = list(rows)
    ref = {(r[pair_key], *(r[k] for k in keys)): r for r in rows if r[method_key] == reference}
    diffs = []
    for row in rows:
        partner = ref.get((row[pair_key], *(row[k] for k in keys)))
        if row[method_key] == reference or partner is None:
            continue
        diff = {k: row[k] for k in (method_key, pair_key, *keys, split_key)}
        diff.update({m: float(row[m]) - float(partner[m]) for m in metrics})
        diffs.append(diff)
    out = summarize(
        diffs,
        metrics,
        keys=(method_key, *keys),
        split_key=split_key,
        confidence=confidence,
        num_resamples=num_resamples,
        seed=seed,
    )
    for entry in out:
        entry["reference"] = reference
    return out


def sign_flip_pvalue(
    differences: Sequence[float] | np.ndarray, *, num_resamples: int = 10000, seed: int = 0
) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of mean difference 0.

    Under the null, each volume's paired difference is as likely positive as negative, so
    the statistic ``|mean(d)|`` is compared with ``|mean(s * d)|`` over sign vectors ``s``:
    all ``2^n`` of them when ``2^n <= num_resamples`` (the exact test), else
    ``num_resamples`` random ones plus the observed one, ``p = (1 + #{>=}) / (1 + B)``
    (never 0; Phipson & Smyth 2010).

    Args:
        differences: float (n,) per-volume differences, finite, n >= 1.
        num_resamples: random sign vectors when the exact test is too large.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        p in (0, 1].
    """
    d = _as_values(differences)
    num_resamples = checks.positive_int("num_resamples", num_resamples)
    observed = abs(d.mean())
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties in float arithmetic count
    if 2.0**d.size <= num_resamples:
        bits = (np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1  # (2^n, n)
        stats = np.abs(((1 - 2 * bits) * d).mean(axis=1))
        return float(np.mean(stats >= observed - tol))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(num_resamples, d.size))
    stats = np.abs((signs * d).mean(axis=1))
    return float((1 + np.sum(stats >= observed - tol)) / (1 + num_resamples))


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979).

    Sorted ascending, ``p_(i)`` is adjusted to ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    a hypothesis is rejected when its adjusted p-value is ``<= alpha``. Controls the
    family-wise error rate at ``alpha`` under any dependence between the tests.

    Returns:
        (adjusted p-values, rejected), in the input order.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist(), [bool(a <= alpha) for a in adjusted]
