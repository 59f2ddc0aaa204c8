"""The data, checkpoint and mask parts of a run's ``provenance.json`` (framework-free).

What a run read (every input file hashed, :func:`mri_recon.runinfo.manifest`) and the masks
it scored with: an evaluation records the masks its report carries (the masks that were
scored, :func:`eval_fields`); a training run records the per-file masks its validation uses
and the rule that seeds its training masks (:func:`train_fields`). The Hydra-aware rest of a
record (config, choices, argv, resources) is :class:`mri_recon.cli.provenance.RunRecord`'s.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mri_recon.data.fastmri import DataError, list_volumes, read_volume_info, split_dir
from mri_recon.evaluation.volumes import VolumeMask, volume_mask
from mri_recon.physics.masks import ColumnMaskFunc
from mri_recon.runinfo import manifest

if TYPE_CHECKING:
    from mri_recon.evaluation.run import EvalReport, EvalSettings

PER_FILE_SEEDING = (
    "per file: mask_func(W, seed=file_seed(fname)), file_seed = tuple(map(ord, fname))"
)
TRAIN_SEEDING = (
    "per sample: mask_func(W, seed=mask_seeds(num_samples, seed, epoch)[index]) "
    "(mri_recon.lit.samplers: numpy SeedSequence([seed, epoch, 1]) -> torch.Generator)"
)


def describe_mask_func(mask_func: ColumnMaskFunc | None) -> dict[str, Any] | None:
    """The public settings of a mask function (type, centre fractions, accelerations)."""
    if mask_func is None:
        return None
    return {k: v for k, v in vars(mask_func).items() if not k.startswith("_") and v is not None}


def mask_entry(fname: str, vm: VolumeMask) -> dict[str, Any]:
    """One volume's mask as the record lists it: source, acceleration, centre fraction and
    the :data:`~mri_recon.physics.masks.MASK_COLUMNS` of ``per_volume.csv``."""
    return {
        "fname": fname,
        "source": vm.source,
        "acceleration": vm.acceleration,
        "center_fraction": vm.center_fraction,
        **vm.columns(),
    }


def volume_masks(
    paths: Iterable[Path], mask_func: ColumnMaskFunc | None, challenge: str, split: str
) -> list[dict[str, Any]]:
    """Per validation volume of a training run: the mask validation uses (a bad file: its
    error). An evaluation records the masks it scored instead (``EvalReport.masks``)."""
    rows = []
    for path in paths:
        try:
            vm = volume_mask(read_volume_info(path, challenge, split), mask_func)
        except DataError as err:  # a skipped file
            rows.append({"fname": Path(path).name, "error": str(err)})
            continue
        rows.append(mask_entry(Path(path).name, vm))
    return rows


def file_manifest(paths: Iterable[str | os.PathLike | None]) -> list[dict[str, Any]]:
    """The hashed manifest of the distinct paths given (None entries skipped)."""
    return manifest(sorted({str(p) for p in paths if p}))


def train_fields(
    root: str | os.PathLike,
    challenge: str,
    splits: Sequence[str],
    mask_func: ColumnMaskFunc,
    seed: int | None,
    ckpt_path: str | None,
) -> dict[str, Any]:
    """A training segment's ``data`` (the train and validation ``splits`` hashed),
    ``checkpoints`` (a resume's) and ``masks`` (the mask function, the seeding rules and
    the per-file validation masks)."""
    files = {s: list_volumes(root, challenge, s) for s in splits}
    return {
        "data": {"root": str(root), "files": file_manifest(p for s in splits for p in files[s])},
        "checkpoints": file_manifest([ckpt_path]),
        "masks": {
            "mask_func": describe_mask_func(mask_func),
            "seed": seed,
            "training": TRAIN_SEEDING,
            "validation": PER_FILE_SEEDING,
            "validation_volumes": volume_masks(files[splits[-1]], mask_func, challenge, splits[-1]),
        },
    }


def eval_fields(
    settings: EvalSettings, report: EvalReport, checkpoints: Sequence[str]
) -> dict[str, Any]:
    """An evaluation segment's ``data`` (the evaluated and skipped volumes hashed),
    ``checkpoints`` (the input ``checkpoints`` hashed) and ``masks`` (each volume's mask as
    the report carries it: the mask that was scored)."""
    folder = split_dir(settings.root, settings.challenge, settings.split)
    evaluated = list(dict.fromkeys(r["fname"] for r in report.rows))
    names = [*evaluated, *(s.fname for s in report.skipped)]
    return {
        "data": {"root": str(settings.root), "files": file_manifest(folder / f for f in names)},
        "checkpoints": file_manifest(checkpoints),
        "masks": {
            "mask_func": describe_mask_func(settings.mask_func),
            "mask_name": settings.mask_name,
            "seeding": PER_FILE_SEEDING,
            "volumes": [mask_entry(f, vm) for f, vm in report.masks.items()],
        },
    }
