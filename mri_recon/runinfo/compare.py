"""Does a replayed run reproduce its record? Its per-volume table against the recorded one.

Rows are matched by their keys (:data:`KEYS`: file and method for an evaluation, file for a
training run's validation) and compared on every column but :data:`IGNORED`; metrics within
:data:`TOLERANCES` (absolute: float32 on another CPU or a GPU moves SSIM by ~1e-6, PSNR by
~1e-4 dB, NMSE by ~1e-7; the tolerances leave two orders of magnitude over that and stay far
below the differences between methods) still reproduce; any other column must be equal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from mri_recon.fileio import read_csv
from mri_recon.runinfo.record import RecordError

TOLERANCES = {"nmse": 1e-5, "psnr": 1e-2, "ssim": 1e-4}
IGNORED = ("seconds_per_slice",)
KEYS = {"eval": ("fname", "method"), "train": ("fname",)}
TABLES = {"eval": "per_volume.csv", "train": "val_volumes.csv"}


def _difference(a: str, b: str) -> float:
    try:
        x, y = float(a), float(b)
    except ValueError:
        return math.inf
    return abs(x - y) if math.isfinite(x - y) else math.inf


def compare_tables(recorded: Path, replayed: Path, keys: Sequence[str]) -> tuple[list[str], bool]:
    """(report lines, whether the replay reproduces the record): see the module docstring."""
    old_rows, new_rows = read_csv(recorded), read_csv(replayed)
    columns = list(old_rows[0]) if old_rows else []
    if not set(keys) <= set(columns):
        raise RecordError(f"{recorded}: no {' and '.join(keys)} columns")
    old = {tuple(r[k] for k in keys): r for r in old_rows}
    new = {tuple(r[k] for k in keys): r for r in new_rows}
    if old.keys() != new.keys():
        missing, extra = sorted(old.keys() - new.keys()), sorted(new.keys() - old.keys())
        return [f"rows differ: missing {missing[:5]}, extra {extra[:5]}"], False
    worst: dict[str, tuple[float, tuple]] = {}
    others: list[str] = []
    for key, a in old.items():
        b = new[key]
        for col in columns:
            if col in IGNORED or a[col] == b.get(col):
                continue
            if col in TOLERANCES:
                d = _difference(a[col], b.get(col, ""))
                if d >= worst.get(col, (-1.0,))[0]:
                    worst[col] = (d, key)
            else:
                others.append(f"{col} of {'/'.join(key)}: {a[col]!r} recorded, {b.get(col)!r} now")
    if not worst and not others:
        return [f"identical to the record ({len(old)} rows; {IGNORED[0]} not compared)"], True
    lines = [
        f"largest |d {m}| = {d:.3g} ({'/'.join(key)}); tolerance {TOLERANCES[m]:g}"
        + ("" if d <= TOLERANCES[m] else "  <- past tolerance")
        for m, (d, key) in worst.items()
    ]
    lines += others[:10]
    ok = not others and all(d <= TOLERANCES[m] for m, (d, _) in worst.items())
    return lines, ok
