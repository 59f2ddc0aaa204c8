"""Data-loading throughput per core: our loader vs fastMRI's, on the same files.

    python scripts/bench_data.py [--root DIR] [--challenge both] [--split val]
                                 [--workers 2] [--repeats 3]

One row per (challenge, path, workers), slices/s per core (the loading processes: the main
one at 0 workers, else the N workers):

- ``read``: ours is the training loader's item (:class:`~mri_recon.lit.datamodule.MaskedSlices`
  over :class:`~mri_recon.data.slice_dataset.SliceDataset`: k-space, target, column mask);
  fastMRI's is ``fastmri.data.SliceDataset`` without a transform (k-space, mask, target, attrs).
- ``read+zf``: ours adds the zero-filled image as ``data.transform=worker`` forms it
  (:func:`~mri_recon.physics.fft.ifft2c_sampled_crop`, RSS over coils); fastMRI's adds its
  ``UnetDataTransform`` (mask, ``ifft2c``, crop, RSS, instance normalisation of image and
  target).

Both use fastMRI's random mask, 4x with center fraction 0.08, seeded by the file name. Each
number is the best of ``--repeats`` passes over the whole split (a persistent loader, so
worker start-up is not counted past the first pass); torch runs on one thread per process.
The root defaults to ``$MRI_RECON_DATA``, else ``data/synthetic`` in the checkout; with
``--challenge both`` the challenges whose ``<challenge>_<split>/`` folder exists are timed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import torch
from fastmri.data import SliceDataset as FastMRISliceDataset
from fastmri.data.subsample import RandomMaskFunc
from fastmri.data.transforms import UnetDataTransform
from torch.utils.data import DataLoader, Dataset

from mri_recon.data.demo import default_data_root
from mri_recon.data.fastmri import CHALLENGES, SPLITS, DataError, split_dir
from mri_recon.data.slice_dataset import SliceDataset
from mri_recon.lit.datamodule import MaskedSlices
from mri_recon.physics.masks import ColumnMaskFunc

PROG = "bench_data"
CENTER_FRACTION, ACCELERATION = 0.08, 4
PATHS = ("read", "read+zf")
HEADER = [
    "challenge",
    "path",
    "workers",
    "slices",
    "ours slices/s/core",
    "fastMRI slices/s/core",
    "ours/fastMRI",
]


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
    parser.add_argument("--workers", type=int, default=2, help="N of the N-worker rows")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the best is reported")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.root is None:
        args.root = default_data_root()
    return args


def _init_worker(_: int) -> None:
    torch.set_num_threads(1)


def _items(dataset: Dataset, workers: int) -> Iterable:
    """A persistent loader yielding the dataset's items one by one (no collation)."""
    if workers == 0:
        return [dataset]  # iterated directly below
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        persistent_workers=True,
        worker_init_fn=_init_worker,
    )


def best_rate(dataset: Dataset, workers: int, repeats: int) -> float:
    """Slices/s per loading process: the best of ``repeats`` passes over ``dataset``."""
    loader = _items(dataset, workers)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        if workers == 0:
            for i in range(len(dataset)):
                dataset[i]
        else:
            for _item in loader:
                pass
        best = min(best, time.perf_counter() - start)
    return len(dataset) / max(best, 1e-12) / max(workers, 1)


def bench_challenge(
    root: Path, challenge: str, split: str, workers: int, repeats: int
) -> list[list[str]]:
    """The rows of one challenge: (path, workers) in PATHS x (0, workers)."""
    slices = SliceDataset(root, challenge, split)
    mask_func = ColumnMaskFunc("random", [CENTER_FRACTION], [ACCELERATION])
    folder = split_dir(root, challenge, split)
    fastmri_mask = RandomMaskFunc([CENTER_FRACTION], [ACCELERATION])
    datasets = {
        "read": (
            MaskedSlices(slices, mask_func, per_file_masks=True),
            FastMRISliceDataset(folder, challenge),
        ),
        "read+zf": (
            MaskedSlices(slices, mask_func, per_file_masks=True, transform="worker"),
            FastMRISliceDataset(
                folder, challenge, transform=UnetDataTransform(challenge, fastmri_mask, True)
            ),
        ),
    }
    if len(datasets["read"][1]) != len(slices):
        print(
            f"{PROG}: warning: fastMRI indexes {len(datasets['read'][1])} slices, "
            f"ours {len(slices)}",
            file=sys.stderr,
        )
    rows = []
    for path in PATHS:
        ours, theirs = datasets[path]
        for n in (0, workers):
            rate_ours = best_rate(ours, n, repeats)
            rate_theirs = best_rate(theirs, n, repeats)
            rows.append(
                [
                    challenge,
                    path,
                    str(n),
                    str(len(slices)),
                    f"{rate_ours:.1f}",
                    f"{rate_theirs:.1f}",
                    f"{rate_ours / rate_theirs:.2f}x",
                ]
            )
    slices.close()
    return rows


def format_table(rows: list[list[str]]) -> str:
    """A Markdown table of the rows under the fixed header."""
    lines = [HEADER, ["---"] * len(HEADER), *rows]
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
            row
            for c in challenges_to_run(args.root, args.challenge, args.split)
            for row in bench_challenge(args.root, c, args.split, args.workers, args.repeats)
        ]
    except (DataError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(
        f"root {args.root}, split {args.split}, random mask {ACCELERATION}x (center "
        f"{CENTER_FRACTION}), best of {args.repeats}, 1 torch thread per process"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
