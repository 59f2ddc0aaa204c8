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

from mri_recon.metrics.stats import ALL, paired_differences, summarize
from mri_recon.viz.logs import MissingLogError, final_metrics, load_run

HIGHER_IS_BETTER = {"ssim": True, "psnr": True, "nmse": False}
KEYS = ("method", "fname", "acceleration")
STABILITY = "max_drop_val/ssim"
NO_SEED = "-"


def read_per_volume(path: str | Path, metrics: Sequence[str]) -> pd.DataFrame:
    """``per_volume.csv`` of an evaluation: one row per method, volume and acceleration.

    Raises:
        ValueError: a missing or unreadable file, missing columns, no rows, a metric or
            acceleration that is not a finite number, or a (method, fname, acceleration)
            given twice.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (expected an mri-recon-eval per_volume.csv)")
    try:
        frame = pd.read_csv(path, dtype={"method": str, "fname": str, "acquisition": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: unreadable CSV ({' '.join(str(err).split())})") from None
    numeric = ["acceleration", *metrics]
    missing = [c for c in (*KEYS, "acquisition", *numeric) if c not in frame]
    if missing:
        raise ValueError(f"{path}: lacks the columns {missing}")
    if frame.empty:
        raise ValueError(f"{path}: no rows")
    values = frame[numeric].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(np.float64)).all(axis=1)
    dup = frame.duplicated(list(KEYS))
    for rows, what in ((bad, f"a non-finite value among {numeric}"), (dup, "a repeated row")):
        if rows.any():
            i = int(np.flatnonzero(rows)[0])
            raise ValueError(
                f"{path}: line {i + 2}: {what} (method {frame.method[i]}, {frame.fname[i]})"
            )
    return frame.assign(**{c: values[c] for c in numeric})


def assign_settings(methods: Sequence[str], pattern: str) -> dict[str, tuple[str, str]]:
    """method -> (setting, seed) by ``pattern`` (matched in full), in the order of ``methods``.

    Raises:
        ValueError: an invalid pattern, one without the named groups ``setting`` and ``seed``,
            or a setting that is also the name of an unmatched method.
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"setting regex {pattern!r}: {err}") from None
    lacking = [g for g in ("setting", "seed") if g not in regex.groupindex]
    if lacking:
        raise ValueError(
            f"setting regex {pattern!r} lacks the named groups {lacking} "
            "(e.g. '^(?P<setting>.+)_s(?P<seed>\\d+)$')"
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
        metrics: metric columns, among ``HIGHER_IS_BETTER``.
        run_dirs: method -> its training run directory (for the stability columns).

    Returns:
        (rows, notes): rows with the columns of :func:`summary_columns`; notes on runs
        without training logs.
    """
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown:
        raise ValueError(f"metrics {unknown}: not among {list(HIGHER_IS_BETTER)}")
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
    keys = ("setting", "acceleration")
    stats = {
        (e["setting"], e["acceleration"]): e
        for e in summarize(records, metrics, keys=keys)
        if e["acquisition"] == ALL
    }
    diffs = {
        (e["setting"], e["acceleration"]): e
        for e in paired_differences(records, metrics, reference=reference, method_key="setting")
        if e["acquisition"] == ALL
    }
    seed_means = frame.groupby(["setting", "acceleration", "seed"])[list(metrics)].mean()
    ref = averaged[averaged.setting == reference].set_index(["acceleration", "fname"])
    drops, notes = max_drops({m: (run_dirs or {}).get(m) for m in settings})
    rows = []
    for setting in names:
        seeds = sorted((s for s_, s in settings.values() if s_ == setting), key=_seed_order)
        methods = {s: m for m, (s_, s) in settings.items() if s_ == setting}
        drop = np.array([drops[methods[s]] for s in seeds])
        known = drop[np.isfinite(drop)]
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
                won = (delta[m] > 0 if HIGHER_IS_BETTER[m] else delta[m] < 0) if diff else None
                row.update(
                    {
                        m: entry[m].mean,
                        f"{m}_ci_low": entry[m].ci_low,
                        f"{m}_ci_high": entry[m].ci_high,
                        f"{m}_seed_means": _join(means),
                        f"{m}_seed_sd": float(np.std(means, ddof=1)) if len(means) > 1 else None,
                        f"{m}_diff": diff[m].mean if diff else None,
                        f"{m}_diff_ci_low": diff[m].ci_low if diff else None,
                        f"{m}_diff_ci_high": diff[m].ci_high if diff else None,
                        f"{m}_wins": int(won.sum()) if diff else None,
                    }
                )
            row[f"{STABILITY}_seeds"] = _join(drop)
            row[f"{STABILITY}_mean"] = float(known.mean()) if known.size else None
            row[f"{STABILITY}_max"] = float(known.max()) if known.size else None
            rows.append(row)
    return rows, notes


def summary_columns(metrics: Sequence[str]) -> list[str]:
    """The CSV columns of :func:`summarize_seeds` rows."""
    per_metric = ("", "_ci_low", "_ci_high", "_seed_means", "_seed_sd", "_diff", "_diff_ci_low")
    per_metric += ("_diff_ci_high", "_wins")
    head = ["setting", "acceleration", "seeds", "seed_labels", "volumes", "reference"]
    stability = [f"{STABILITY}_{s}" for s in ("seeds", "mean", "max")]
    return head + ["paired_volumes"] + [m + s for m in metrics for s in per_metric] + stability


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
            diff = _fmt(m, row[f"{m}_diff"], signed=True)
            if diff != "-":
                lo, hi = (_fmt(m, row[f"{m}_diff_ci_{s}"], signed=True) for s in ("low", "high"))
                diff = f"{diff} [{lo}, {hi}]"
            wins = row[f"{m}_wins"]
            cells += [
                f"{_fmt(m, row[m])} [{_fmt(m, row[f'{m}_ci_low'])}, {_fmt(m, row[f'{m}_ci_high'])}]",
                _fmt_joined(m, row[f"{m}_seed_means"]),
                _fmt(m, row[f"{m}_seed_sd"]),
                diff,
                "-" if wins is None else f"{wins}/{row['paired_volumes']}",
            ]
        cells.append(_fmt_joined("drop", row[f"{STABILITY}_seeds"]))
        cells += [_fmt("drop", row[f"{STABILITY}_{s}"]) for s in ("mean", "max")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
