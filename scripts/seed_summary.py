"""Summarise an evaluation of models trained with several seeds per setting.

    python scripts/seed_summary.py EVAL_DIR --setting-regex '^(?P<setting>.+)_s(?P<seed>\\d+)$' \\
        --reference g16_bs1 [--metrics ssim psnr nmse] [--out DIR]

Reads ``EVAL_DIR/per_volume.csv`` (one ``mri-recon-eval`` run over every model) and groups
its methods into settings by the regex (methods it does not match, e.g. zero_filled, are
settings of one seed). Per setting and acceleration: seeds, the seed-averaged mean [95% CI
over volumes], each seed's mean, their sd, the paired difference setting - reference of the
seed-averaged per-volume values [95% CI] and the volumes where the setting is better; the max
drop of validation SSIM of each seed's training run (the runs of the eval's ``checkpoints`` /
``ckpt_path``, ``-`` where unknown). Prints the Markdown table and writes
``seed_summary.md`` and ``seed_summary.csv`` into ``--out`` (default EVAL_DIR).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.cli.run_configs import load_run_config
from mri_recon.evaluation.seeds import (
    HIGHER_IS_BETTER,
    read_per_volume,
    seed_table_markdown,
    summarize_seeds,
)
from mri_recon.fileio import output_dir_problem, write_atomic, write_csv
from mri_recon.metrics.stats import summarize


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="an mri-recon-eval run directory")
    parser.add_argument(
        "--setting-regex",
        required=True,
        help="regex with named groups setting and seed, matched against each method's name",
    )
    parser.add_argument("--reference", required=True, help="setting the differences subtract")
    parser.add_argument(
        "--metrics", nargs="+", default=["ssim", "psnr", "nmse"], choices=list(HIGHER_IS_BETTER)
    )
    parser.add_argument("--out", type=Path, default=None, help="output folder (default EVAL_DIR)")
    return parser.parse_args(argv)


def checkpoint_run_dirs(eval_dir: Path) -> dict[str, Path]:
    """method -> training run directory, for the eval's ``checkpoints`` and the ``unet``
    method's ``ckpt_path`` that sit in a run's ``checkpoints/`` folder (relative paths are
    taken from the eval's working directory)."""
    cfg = load_run_config(eval_dir)
    if cfg is None:
        return {}
    try:
        named = dict(OmegaConf.to_container(cfg.get("checkpoints") or {}, resolve=True))
        if cfg.get("ckpt_path"):
            named.setdefault("unet", cfg.ckpt_path)
        cwd = OmegaConf.select(cfg, "__hydra__.runtime.cwd", default=None)
    except OmegaConfBaseException as err:
        raise ValueError(f"{eval_dir}/.hydra/config.yaml: {str(err).splitlines()[0]}") from None
    paths = {name: Path(cwd or ".", str(path)) for name, path in named.items()}
    return {n: p.parent.parent for n, p in paths.items() if p.parent.name == "checkpoints"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out if args.out is not None else args.eval_dir
    try:
        if not args.eval_dir.is_dir():
            raise ValueError(f"{args.eval_dir}: no such directory")
        frame = read_per_volume(args.eval_dir / "per_volume.csv", args.metrics)
        rows, notes = summarize_seeds(
            frame,
            args.setting_regex,
            args.reference,
            args.metrics,
            checkpoint_run_dirs(args.eval_dir),
        )
        problem = output_dir_problem(out)
        if problem:
            raise ValueError(problem)
    except ValueError as err:
        print(f"seed_summary: error: {err}", file=sys.stderr)
        return 2
    bootstrap = summarize.__kwdefaults__  # what summarize_seeds runs with
    markdown = (
        f"Seeds of {args.eval_dir / 'per_volume.csv'}: settings by `{args.setting_regex}`, "
        f"reference {args.reference}; intervals: percentile bootstrap over volumes "
        f"({bootstrap['num_resamples']} resamples, seed {bootstrap['seed']}) of the "
        "seed-averaged values; per-seed values in seed order; wins = volumes better than the "
        "reference.\n\n" + seed_table_markdown(rows, args.metrics)
    )
    markdown += "".join(f"\nNo stability for {note}\n" for note in notes)
    try:
        write_csv(out / "seed_summary.csv", rows, list(rows[0]))
        write_atomic(out / "seed_summary.md", markdown)
    except OSError as err:
        print(f"seed_summary: error: {out}: {err.strerror or err}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"seed_summary: no stability for {note}", file=sys.stderr)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
