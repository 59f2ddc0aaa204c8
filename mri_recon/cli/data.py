"""``mri-recon-data``: build the synthetic dataset, check fastMRI folders.

    mri-recon-data synth --out DIR [--format F] [--preset default|large|tiny]
                         [--challenge singlecoil|multicoil|both] [--anatomy knee|prostate]
                         [--seed N] [--overwrite]
    mri-recon-data check DIR [--format F] [--option KEY=VALUE ...] [--headers-only] [--rescan]
                         [--quiet]

``--format``: fastmri (default), cc359, m4raw or cmrxrecon (docs/DATASETS.md): ``synth``
writes tiny files of that layout (the keys, dtypes, axis orders and attributes its reader
relies on; ``--anatomy prostate``: fastMRI prostate T2 files, averages first), ``check``
validates files as that format.

``check`` prints ``OK <path>`` or ``BAD <path>: <reason>`` per file, then
``checked N files: a OK, b BAD``; its verdicts are those of training and evaluation
(:func:`mri_recon.data.prescan.scan_volume`, whose clean value scans are cached). Exit codes:
0 all good, 1 bad data, 2 usage error; a closed output pipe (``check DIR | head``) stops it
quietly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

PROG = "mri-recon-data"
PRESETS = ("default", "large", "tiny")  # mri_recon.data.synthetic.PRESETS (heavy to import)
FORMATS = ("fastmri", "cc359", "m4raw", "cmrxrecon")  # mri_recon.data.formats.FORMATS


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the ``synth`` and ``check`` subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Build the synthetic dataset; check fastMRI-layout folders."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{synth,check}")
    synth = sub.add_parser("synth", help="generate the synthetic fastMRI-layout dataset")
    synth.add_argument("--out", required=True, type=Path, help="data root to write into")
    synth.add_argument("--format", choices=FORMATS, default="fastmri", help="data layout")
    synth.add_argument("--preset", choices=PRESETS, default="default")
    synth.add_argument("--challenge", choices=("singlecoil", "multicoil", "both"), default="both")
    synth.add_argument("--anatomy", choices=("knee", "prostate"), default="knee",
                       help="fastmri: knee-like phantoms or prostate T2 files (averages)")  # fmt: skip
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace existing splits' volumes")
    check = sub.add_parser("check", help="validate every .h5 under DIR (fastMRI layout)")
    check.add_argument("dir", type=Path, metavar="DIR", help="folder (recursive) or one file")
    check.add_argument("--format", choices=FORMATS, default="fastmri", help="data layout")
    check.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a format option, as data.format_options has it (e.g. target=mean, acceleration=4)",
    )  # fmt: skip
    check.add_argument("--headers-only", action="store_true", help="no full read for NaN/Inf")
    check.add_argument("--rescan", action="store_true", help="ignore cached clean scans")
    check.add_argument("--quiet", "-q", action="store_true", help="only BAD lines and summary")
    return parser


def _error(command: str, message: str, code: int) -> int:
    print(f"{PROG} {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _synth(args: argparse.Namespace) -> int:
    from mri_recon.data.formats import get_reader
    from mri_recon.data.synthetic import generate_dataset  # heavy, and only needed here

    extra = {"overwrite": True} if args.overwrite else {}
    try:
        if args.anatomy == "prostate" and args.format != "fastmri":
            return _error("synth", "--anatomy prostate is a layout of --format fastmri", 2)
        if args.anatomy == "prostate":
            from mri_recon.data.formats.prostate import synth

            files = synth(args.out, args.preset, args.seed)
        elif args.format == "fastmri":
            generate_dataset(args.out, args.preset, args.challenge, args.seed, True, **extra)
            files = list(args.out.rglob("*.h5"))
        else:
            files = get_reader(args.format).synth(args.out, args.preset, args.seed)
    except (ValueError, OSError) as err:
        return _error("synth", str(err), 1)
    suffix = {p.suffix for p in files} or {".h5"}
    print(f"wrote {len(files)} {'/'.join(sorted(suffix))} files under {args.out}")
    return 0


def json_or_text(value: str) -> object:
    """``4`` -> 4, ``[200,160]`` -> [200, 160], ``null`` -> None, ``mean`` -> "mean"."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _check(args: argparse.Namespace) -> int:
    from mri_recon.data.checker import CheckResult, DataError, iter_check_directory, summary_line
    from mri_recon.data.formats import get_reader

    if not args.dir.exists():
        return _error("check", f"{args.dir}: no such file or directory", 2)
    try:
        options = {k: json_or_text(v) for k, _, v in (o.partition("=") for o in args.option)}
        reader = get_reader(args.format, options)
    except ValueError as err:  # an option the format does not have, or a bad value
        reason = str(err).removeprefix("format_options").lstrip(".: ")
        return _error("check", f"--option {reason}", 2)
    results: list[CheckResult] = []
    try:
        for result in iter_check_directory(args.dir, not args.headers_only, args.rescan, reader):
            results.append(result)
            if not (args.quiet and result.ok):
                print(result.line(), flush=True)
    except DataError as err:  # a folder without any .h5 file
        return _error("check", str(err), 1)
    print(summary_line(results))
    return 0 if all(r.ok for r in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 bad data, 2 usage error)."""
    args = build_parser().parse_args(argv)
    try:
        return {"synth": _synth, "check": _check}[args.command](args)
    except BrokenPipeError:  # e.g. `check DIR | head -3`: stop, without a traceback
        # stdout is gone: point it at /dev/null so the flush at exit does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
