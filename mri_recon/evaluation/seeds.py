"""Summaries over training seeds: models trained with several seeds per setting, evaluated in
one ``mri-recon-eval`` run (``per_volume.csv``), summarised per setting and acceleration.

Methods are grouped into settings by a regex with the named groups ``setting`` and ``seed``
(``adam_s1`` -> setting ``adam``, seed ``1``); a method it does not match (``zero_filled``)
is its own setting with one seed, ``-``. Per volume and acceleration, a setting's metric is
the mean over its seeds; intervals and paired differences against the reference setting are
then taken over volumes (:mod:`mri_recon.metrics.stats`), so the seed-to-seed spread is
reported beside them (each seed's mean over volumes, their sd) rather than mixed in.
Stability is the max drop of validation SSIM during training of each seed
(:func:`mri_recon.viz.logs.final_metrics`). pandas and numpy only; the script
``scripts/seed_summary.py`` reads the evaluation's config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mri_recon.fileio import read_csv
from mri_recon.metrics.optional import ALL_METRICS, LOWER_IS_BETTER
from mri_recon.metrics.stats import ALL, Interval, paired_differences, summarize
from mri_recon.viz.logs import MissingLogError, final_metrics, load_run

HIGHER_IS_BETTER = {m: m not in LOWER_IS_BETTER for m in ALL_METRICS}
KEYS = ("method", "fname", "acceleration")
STABILITY = "max_drop_val/ssim"
NO_SEED = "-"


def read_per_volume(path: str | Path, metrics: Sequence[str]) -> pd.DataFrame:
    """``per_volume.csv`` of an evaluation: one row per method, volume and acceleration.

    Raises:
        ValueError: a missing file, missing columns, no rows, a metric or
            acceleration that is not a finite number, or a (method, fname, acceleration)
            given twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected an mri-recon-eval per_volume.csv)")
    rows = read_csv(path)  # every cell a string; the numbers are converted below
    if not rows:
        raise ValueError(f"{path}: no rows")
    frame = pd.DataFrame(rows)
    numeric = ["acceleration", *metrics]
    missing = [c for c in (*KEYS, "acquisition", *numeric) if c not in frame]
    if missing:
        raise ValueError(f"{path}: lacks the columns {missing}")
    values = frame[numeric].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(np.float64)).all(axis=1)
    dup = frame.duplicated(list(KEYS))
    for rows, what in ((bad, f"a non-finite value among {numeric}"), (dup, "a repeated row")):
        if rows.any():
            i = int(np.flatnonzero(rows)[0])
            raise ValueError(
                f"{path}: line {i + 2}: {what} (method {frame.method[i]}, {frame.fname[i]})"
            )
    return frame.assign(
        acquisition=frame["acquisition"].fillna(""), **{c: values[c] for c in numeric}
    )


def assign_settings(methods: Sequence[str], pattern: str) -> dict[str, tuple[str, str]]:
    """method -> (setting, seed) by ``pattern`` (matched in full), in the order of ``methods``.

    Raises:
        ValueError: an invalid pattern, one without the named groups ``setting`` and ``seed``,
            or a setting that is also the name of an unmatched method.
    """
    try:
        regex = re.compile(pattern)
        lacking = [g for g in ("setting", "seed") if g not in regex.groupindex]
        problem = lacking and f"lacks the named groups {lacking}"
    except re.error as err:
        problem = str(err)
    if problem:  # an invalid pattern, or one that cannot name a setting and a seed
        raise ValueError(
            f"setting regex {pattern!r}: {problem} (e.g. '^(?P<setting>.+)_s(?P<seed>\\d+)$')"
        )
    out = {}
    for method in methods:
        match = regex.fullmatch(method)
        ok = match is not None and match["setting"] and match["seed"] is not None
        out[method] = (match["setting"], match["seed"]) if ok else (method, NO_SEED)
    plain = {setting for setting, seed in out.values() if seed == NO_SEED}
    for method, (setting, seed) in out.items():
        if seed != NO_SEED and setting in plain:
            raise ValueError(f"method {method} falls in setting {setting!r}, also a method's name")
    return out


def _seed_order(seed: str) -> tuple[int, int, str]:
    return (0, int(seed), seed) if seed.isdigit() else (1, 0, seed)


def seed_average(frame: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Per (setting, fname, acceleration), each metric averaged over the setting's seeds.

    Args:
        frame: :func:`read_per_volume` rows with ``setting`` and ``seed`` columns added.

    Raises:
        ValueError: a seed lacking a (volume, acceleration) another seed of its setting has.
    """
    for setting, rows in frame.groupby("setting", sort=False):
        have = {s: set(zip(g.fname, g.acceleration, strict=True)) for s, g in rows.groupby("seed")}
        union = set().union(*have.values())
        for seed in sorted(have, key=_seed_order):
            lacking = sorted(union - have[seed])
            if lacking:
                more = f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""
                raise ValueError(
                    f"setting {setting}: seed {seed} lacks volume {lacking[0][0]} at "
                    f"acceleration {lacking[0][1]:g}{more}, which other seeds have"
                )
    aggregate = {"acquisition": ("acquisition", "first"), **{m: (m, "mean") for m in metrics}}
    grouped = frame.groupby(["setting", "fname", "acceleration"], sort=False)
    return grouped.agg(**aggregate).reset_index()


def max_drops(run_dirs: Mapping[str, Path | None]) -> tuple[dict[str, float], list[str]]:
    """method -> max drop of validation SSIM of its training run (NaN where unknown), and a
    note per run directory without a training log."""
    drops, notes = {}, []
    for method, run_dir in run_dirs.items():
        drops[method] = math.nan
        if run_dir is not None:
            try:
                drops[method] = float(final_metrics(load_run(run_dir))[STABILITY])
            except MissingLogError as err:
                notes.append(f"{method}: {err}")
    return drops, notes


def summarize_seeds(
    frame: pd.DataFrame,
    pattern: str,
    reference: str,
    metrics: Sequence[str],
    run_dirs: Mapping[str, Path] | None = None,
) -> tuple[list[dict[str, object]], list[str]]:
    """One row per setting (first-appearance order) and acceleration (ascending).

    Args:
        frame: :func:`read_per_volume` rows.
        pattern: the settings regex (:func:`assign_settings`).
        reference: the setting the paired differences subtract.
        metrics: metric columns, among ``HIGHER_IS_BETTER`` (the caller's choices).
        run_dirs: method -> its training run directory (for the stability columns).

    Returns:
        (rows, notes): rows of equal keys (the CSV columns, in order); notes on runs
        without training logs.
    """
    settings = assign_settings(list(frame["method"].unique()), pattern)
    names = list(dict.fromkeys(s for s, _ in settings.values()))
    if reference not in names:
        raise ValueError(f"reference {reference!r} is not a setting; settings: {names}")
    frame = frame.assign(
        setting=frame["method"].map(lambda m: settings[m][0]),
        seed=frame["method"].map(lambda m: settings[m][1]),
    )
    averaged = seed_average(frame, metrics)
    records = averaged.to_dict("records")
    stats = _pooled(summarize(records, metrics, keys=("setting", "acceleration")))
    diffs = _pooled(paired_differences(records, metrics, reference=reference, method_key="setting"))
    seed_means = frame.groupby(["setting", "acceleration", "seed"])[list(metrics)].mean()
    ref = averaged[averaged.setting == reference].set_index(["acceleration", "fname"])
    drops, notes = max_drops({m: (run_dirs or {}).get(m) for m in settings})
    rows = []
    for setting in names:
        methods = {seed: m for m, (s, seed) in settings.items() if s == setting}
        seeds = sorted(methods, key=_seed_order)
        ours = averaged[averaged.setting == setting].set_index(["acceleration", "fname"])
        for r in sorted(ours.index.unique("acceleration")):
            entry, diff = stats[(setting, r)], diffs.get((setting, r))
            row: dict[str, object] = {"setting": setting, "acceleration": r}
            row.update(seeds=len(seeds), seed_labels=" / ".join(seeds), volumes=entry["n"])
            row.update(reference=reference, paired_volumes=diff["n"] if diff else 0)
            # per volume of this acceleration, setting - reference (NaN where unpaired)
            delta = ours.loc[r, list(metrics)] - ref.loc[r, list(metrics)] if diff else None
            for m in metrics:
                means = [float(seed_means.loc[(setting, r, s), m]) for s in seeds]
                row.update(_metric_columns(m, entry[m], diff and diff[m], means, delta))
            row.update(_stability([drops[methods[s]] for s in seeds]))
            rows.append(row)
    return rows, notes


def _pooled(entries: list[dict[str, object]]) -> dict[tuple, dict[str, object]]:
    """:mod:`~mri_recon.metrics.stats` groups of all acquisitions by (setting, acceleration)."""
    return {(e["setting"], e["acceleration"]): e for e in entries if e["acquisition"] == ALL}


def _metric_columns(
    m: str, mean: Interval, diff: Interval | None, seed_means: list[float], delta: pd.DataFrame
) -> dict[str, object]:
    """One metric's columns; ``delta``: per volume setting - reference (None: no pairs)."""
    won = None if diff is None else (delta[m] > 0 if HIGHER_IS_BETTER[m] else delta[m] < 0)
    return {
        m: mean.mean,
        f"{m}_ci_low": mean.ci_low,
        f"{m}_ci_high": mean.ci_high,
        f"{m}_seed_means": _join(seed_means),
        f"{m}_seed_sd": float(np.std(seed_means, ddof=1)) if len(seed_means) > 1 else None,
        f"{m}_diff": diff and diff.mean,
        f"{m}_diff_ci_low": diff and diff.ci_low,
        f"{m}_diff_ci_high": diff and diff.ci_high,
        f"{m}_wins": None if won is None else int(won.sum()),
    }


def _stability(drops: list[float]) -> dict[str, object]:
    """Max drop of validation SSIM per seed (``-`` unknown), mean and max of the known."""
    known = np.array([d for d in drops if math.isfinite(d)])
    return {
        f"{STABILITY}_seeds": _join(drops),
        f"{STABILITY}_mean": float(known.mean()) if known.size else None,
        f"{STABILITY}_max": float(known.max()) if known.size else None,
    }


def _fmt(metric: str, value: object, signed: bool = False) -> str:
    if value is None or not math.isfinite(float(value)):
        return "-"
    spec = {"psnr": ".2f", "nmse": ".4g"}.get(metric, ".4f")
    return format(float(value), ("+" if signed else "") + spec)


def _join(values: Sequence[float]) -> str:
    """Per-seed values as one CSV cell, ``a / b / c`` at full precision, ``-`` for NaN."""
    return " / ".join(repr(float(v)) if math.isfinite(v) else NO_SEED for v in values)


def _fmt_joined(metric: str, text: object) -> str:
    return " / ".join(
        _fmt(metric, None if v == NO_SEED else float(v)) for v in str(text).split(" / ")
    )


def _interval(metric: str, row: Mapping[str, object], key: str, signed: bool) -> str:
    """``mean [low, high]`` of the columns ``key``, ``key_ci_low``, ``key_ci_high``."""
    if row[key] is None:
        return "-"
    low, high = (_fmt(metric, row[f"{key}_ci_{end}"], signed) for end in ("low", "high"))
    return f"{_fmt(metric, row[key], signed)} [{low}, {high}]"


def seed_table_markdown(rows: Sequence[Mapping[str, object]], metrics: Sequence[str]) -> str:
    """A GitHub-Markdown table of :func:`summarize_seeds` rows."""
    head = ["setting", "R", "seeds", "volumes"]
    for m in metrics:
        head += [f"{m} [95% CI]", f"{m} per seed", f"{m} sd", f"{m} - ref [95% CI]", "wins"]
    head += ["max drop val SSIM per seed", "mean", "max"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [str(row["setting"]), f"{row['acceleration']:g}", str(row["seeds"])]
        cells.append(str(row["volumes"]))
        for m in metrics:
            wins = row[f"{m}_wins"]
            cells += [
                _interval(m, row, m, signed=False),
                _fmt_joined(m, row[f"{m}_seed_means"]),
                _fmt(m, row[f"{m}_seed_sd"]),
                _interval(m, row, f"{m}_diff", signed=True),
                "-" if wins is None else f"{wins}/{row['paired_volumes']}",
            ]
        cells.append(_fmt_joined("drop", row[f"{STABILITY}_seeds"]))
        cells += [_fmt("drop", row[f"{STABILITY}_{s}"]) for s in ("mean", "max")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
