"""Compare training runs: convergence plots and a table of final metrics.

    python scripts/compare_runs.py RUN_OR_MULTIRUN_DIR... [--out DIR] [--label-keys KEY...]
        [--samples-key data.batch_size]

Reads each run's Lightning CSV log (``**/metrics.csv``), labels runs by the Hydra overrides
that differ between them (or by ``--label-keys``, e.g. ``--label-keys optim optim.lr``), and
writes into ``--out`` (default ``./compare``): ``convergence_val_ssim.png``,
``convergence_train_loss.png``, ``final_metrics.md`` and ``final_metrics.csv`` (with
``--samples-key``, also ``*_samples.png`` against training samples seen). The Markdown table
is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mri_recon.cli.run_configs import compare_runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run or multirun directories")
    parser.add_argument("--out", type=Path, default=Path("compare"), help="output directory")
    parser.add_argument(
        "--label-keys",
        nargs="+",
        default=None,
        metavar="KEY",
        help="config keys or group names to label runs by (default: differing overrides)",
    )
    parser.add_argument(
        "--samples-key",
        default=None,
        metavar="KEY",
        help="batch-size config key (e.g. data.batch_size): also plot against samples seen",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = compare_runs(
            args.runs, args.out, label_keys=args.label_keys, samples_key=args.samples_key
        )
    except ValueError as err:
        print(f"compare_runs: error: {err}", file=sys.stderr)
        return 2
    for message in result.skipped:
        print(f"compare_runs: skipped {message}", file=sys.stderr)
    print(result.markdown, end="")
    print(f"wrote {', '.join(str(p) for p in result.files.values())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
