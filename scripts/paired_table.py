"""One Markdown table from several evaluation runs on the same volumes and masks (e.g. the
same methods with different coil maps), paired per volume against one reference.

    python scripts/paired_table.py --run acs=R/table4x --run espirit=R/table4x_espirit \
        --reference tv@acs

Each ``--run LABEL=DIR`` names an ``mri-recon-eval`` output directory (its
``per_volume.csv``); a method of run LABEL is ``method@LABEL``; ``zero_filled`` is taken once,
from the first run that has it, and is the baseline of the last column (volumes where a method
beats zero-filling in PSNR / NMSE / foreground SSIM, the latter where ``ssim_fg`` was
computed). Rows: mean per-volume metrics, s/slice, and ``method - reference`` paired per
volume, mean [bootstrap interval] (:func:`mri_recon.metrics.stats.paired_differences`, the
evaluation's own statistics). This is how docs/RESULTS.md's multi-coil table (issue 20.5) was
assembled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mri_recon.metrics.stats import paired_differences

ZERO_FILLED = "zero_filled"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", action="append", required=True, metavar="LABEL=DIR", help="an evaluation run"
    )
    parser.add_argument("--reference", required=True, metavar="METHOD@LABEL")
    parser.add_argument("--num-resamples", type=int, default=2000)
    return parser.parse_args(argv)


def load(runs: list[str]) -> pd.DataFrame:
    """The runs' per-volume rows, ``method`` renamed ``method@label`` (zero-filled kept once,
    unlabelled). ValueError names a bad ``--run`` or a missing ``per_volume.csv``."""
    frames, have_zf = [], False
    for spec in runs:
        label, sep, folder = spec.partition("=")
        if not sep or not label or not folder:
            raise ValueError(f"--run: must be LABEL=DIR, got {spec!r}")
        path = Path(folder) / "per_volume.csv"
        if not path.is_file():
            raise ValueError(f"--run {spec}: no {path}")
        rows = pd.read_csv(path)
        if have_zf:
            rows = rows[rows.method != ZERO_FILLED]
        zf = rows.method == ZERO_FILLED
        have_zf = have_zf or bool(zf.any())
        rows = rows.assign(method=rows.method.where(zf, rows.method + "@" + label))
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def table(rows: pd.DataFrame, reference: str, num_resamples: int = 2000) -> str:
    """The Markdown table (see the module docstring)."""
    methods = list(dict.fromkeys(rows.method))
    if reference not in methods:
        raise ValueError(f"--reference: {reference!r} is not one of {methods}")
    metrics = ["ssim", "psnr"]
    paired = {
        (d["method"], m): d[m]
        for m in metrics
        for d in paired_differences(
            rows.to_dict("records"), [m], reference=reference, num_resamples=num_resamples
        )
        if d.get("acquisition", "all") == "all"
    }
    fg = "ssim_fg" in rows.columns
    zf = rows[rows.method == ZERO_FILLED].set_index("fname")
    head = ["method", "SSIM"] + (["fg SSIM"] if fg else []) + ["PSNR dB", "NMSE", "s/slice"]
    head += [f"ΔSSIM vs {reference}", f"ΔPSNR vs {reference}", "volumes above zero-filled"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        x = rows[rows.method == method].set_index("fname")
        cells = [method, f"{x.ssim.mean():.4f}"] + ([f"{x.ssim_fg.mean():.4f}"] if fg else [])
        cells += [f"{x.psnr.mean():.2f}", f"{x.nmse.mean():.4f}"]
        cells.append(f"{x.seconds_per_slice.mean():.2f}")
        for m, digits in (("ssim", 4), ("psnr", 2)):
            iv = paired.get((method, m))
            cells.append(
                "-"
                if iv is None
                else f"{iv.mean:+.{digits}f} [{iv.ci_low:+.{digits}f}, {iv.ci_high:+.{digits}f}]"
            )
        if method == ZERO_FILLED or zf.empty:
            cells.append("-")
        else:
            z = zf.loc[x.index]
            counts = [(x.psnr > z.psnr).sum(), (x.nmse < z.nmse).sum()]
            counts += [(x.ssim_fg > z.ssim_fg).sum()] if fg else []
            cells.append(" / ".join(str(int(c)) for c in counts) + f" of {len(x)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(table(load(args.run), args.reference, args.num_resamples), end="")
    except ValueError as err:
        print(f"paired_table: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
