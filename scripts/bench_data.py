"""Data-loading throughput, single-threaded: slices/s of our loader vs fastMRI's.

    python scripts/bench_data.py [--root DIR] [--challenge both] [--split val] [--repeats 3]

Per slice, "ours" is :class:`mri_recon.data.slice_dataset.SliceDataset` (read k-space and
target) + the per-file column mask + the zero-filled image (``ifft2c``, center crop to the
volume's ``crop_size``, RSS over coils); "fastMRI" is ``fastmri.data.SliceDataset`` with
``UnetDataTransform`` (the same steps, plus instance normalisation of image and target). Both
use fastMRI's random mask, 4x with center fraction 0.08, seeded by the file name. Each number
is the best of ``--repeats`` passes over the whole split (the first pass also opens the files);
torch runs on one thread. The root defaults to ``$MRI_RECON_DATA``, else ``data/synthetic`` in
the checkout (``mri_recon.data.demo.default_data_root``); with ``--challenge both`` the
challenges whose ``<challenge>_<split>/`` folder exists are timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from fastmri.data import SliceDataset as FastMRISliceDataset
from fastmri.data.subsample import RandomMaskFunc
from fastmri.data.transforms import UnetDataTransform

from mri_recon.data.demo import default_data_root
from mri_recon.data.fastmri import CHALLENGES, SPLITS, DataError, split_dir
from mri_recon.data.slice_dataset import SliceDataset
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

PROG = "bench_data"
CENTER_FRACTION, ACCELERATION = 0.08, 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="data root holding <challenge>_<split>/ (default: $MRI_RECON_DATA, "
        "else data/synthetic)",
    )
    parser.add_argument("--challenge", choices=(*CHALLENGES, "both"), default="both")
    parser.add_argument("--split", choices=SPLITS, default="val")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the best is reported")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.root is None:
        args.root = default_data_root()
    return args


def ours_pass(dataset: SliceDataset, mask_func: ColumnMaskFunc) -> None:
    """Read every slice and form its zero-filled RSS image, float32 (h, w)."""
    for i in range(len(dataset)):
        item = dataset[i]
        kspace = item["kspace"]  # complex64 (C, H, W)
        mask = mask_func(kspace.shape[-1], file_seed(item["fname"])).mask  # bool (W,)
        image = center_crop(ifft2c(apply_mask(kspace, mask)), item["crop_size"])  # (C, h, w)
        rss(image, dim=0)


def best_rates(runs: dict[str, tuple[int, Callable[[], object]]], repeats: int) -> dict[str, float]:
    """Slices/s of each ``name: (num_slices, one_pass)``, best of ``repeats`` interleaved passes."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, (_, one_pass) in runs.items():
            start = time.perf_counter()
            one_pass()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: runs[name][0] / max(best[name], 1e-12) for name in runs}


def bench_challenge(root: Path, challenge: str, split: str, repeats: int) -> list[str]:
    """One table row: challenge, volumes, slices, ours and fastMRI slices/s, their ratio."""
    ours = SliceDataset(root, challenge, split)
    mask_func = ColumnMaskFunc("random", [CENTER_FRACTION], [ACCELERATION])
    transform = UnetDataTransform(
        challenge, RandomMaskFunc([CENTER_FRACTION], [ACCELERATION]), use_seed=True
    )
    theirs = FastMRISliceDataset(split_dir(root, challenge, split), challenge, transform=transform)
    if len(theirs) != len(ours):
        print(
            f"{PROG}: warning: fastMRI indexes {len(theirs)} slices, ours {len(ours)}",
            file=sys.stderr,
        )
    rates = best_rates(
        {
            "ours": (len(ours), lambda: ours_pass(ours, mask_func)),
            "fastmri": (len(theirs), lambda: [theirs[i] for i in range(len(theirs))]),
        },
        repeats,
    )
    ours.close()
    return [
        challenge,
        str(len(ours.volumes)),
        str(len(ours)),
        f"{rates['ours']:.1f}",
        f"{rates['fastmri']:.1f}",
        f"{rates['ours'] / rates['fastmri']:.2f}x",
    ]


def format_table(rows: list[list[str]]) -> str:
    """A Markdown table of the rows under the fixed header."""
    header = ["challenge", "volumes", "slices", "ours slices/s", "fastMRI slices/s", "ours/fastMRI"]
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def challenges_to_run(root: Path, challenge: str, split: str) -> list[str]:
    """The requested challenges; for "both", those with a ``<challenge>_<split>/`` folder."""
    if not root.is_dir():
        raise DataError(
            root,
            "data root does not exist (build one with `mri-recon-data synth "
            "--out DIR`, then pass --root DIR or set MRI_RECON_DATA)",
        )
    if challenge != "both":
        return [challenge]
    found = [c for c in CHALLENGES if split_dir(root, c, split).is_dir()]
    if not found:
        raise DataError(root, f"no {' or '.join(f'{c}_{split}/' for c in CHALLENGES)} folder")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    try:
        rows = [
            bench_challenge(args.root, c, args.split, args.repeats)
            for c in challenges_to_run(args.root, args.challenge, args.split)
        ]
    except (DataError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(
        f"root {args.root}, split {args.split}, random mask {ACCELERATION}x (center "
        f"{CENTER_FRACTION}), best of {args.repeats}, 1 torch thread"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
