"""The data, checkpoint and mask parts of a run's ``provenance.json`` (framework-free).

What a run read (every input file hashed, :func:`mri_recon.runinfo.manifest`) and the masks
it scored with: an evaluation records the masks its report carries (the masks that were
scored, :func:`eval_fields`); a training run records the per-file masks its validation uses
and the rule that seeds its training masks (:func:`train_fields`).

:class:`RunRecord` is one segment of a run directory's record: when a run starts, the code
(git commit, dirty tree, diff hash), package versions, hardware, the resolved config and
Hydra's choices (both given as plain values by the CLI, :mod:`mri_recon.cli.provenance`); a
training run also hashes its data (train and validation splits) and writes the segment at
once, so a killed run leaves a ``running`` segment. When the run ends it adds the data
manifest, the masks, the resources used and the outputs, and rewrites the segment as
``completed``. An evaluation, whose outputs are published all at once, writes its segment
only then. A training run resumed in the same run directory appends a segment
(``resumed_from`` names the checkpoint). Only global rank 0 writes. The record format is in
:mod:`mri_recon.runinfo.record`; ``mri-recon-replay`` reads it back.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mri_recon.data.fastmri import DataError, list_volumes, read_volume_info
from mri_recon.data.formats import format_challenge, get_reader
from mri_recon.evaluation.volumes import VolumeMask, volume_mask
from mri_recon.physics.masks import ColumnMaskFunc
from mri_recon.runinfo import (
    ResourceMeter,
    append_segment,
    git_state,
    hardware,
    manifest,
    package_versions,
    replace_last_segment,
)

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
    paths: Iterable[Path],
    mask_func: ColumnMaskFunc | None,
    challenge: str,
    split: str,
    reader: Any = None,
) -> list[dict[str, Any]]:
    """Per validation volume of a training run: the mask validation uses (a bad file: its
    error). An evaluation records the masks it scored instead (``EvalReport.masks``)."""
    rows = []
    for path in paths:
        try:
            info = read_volume_info(path, challenge, split, reader=reader)
            vm = volume_mask(info, mask_func)
        except DataError as err:  # a skipped file
            rows.append({"fname": Path(path).name, "error": str(err)})
            continue
        rows.append(mask_entry(info.fname, vm))
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
    reader: Any = None,
) -> dict[str, Any]:
    """A training segment's ``data`` (the train and validation ``splits`` hashed),
    ``checkpoints`` (a resume's) and ``masks`` (the mask function, the seeding rules and
    the per-file validation masks)."""
    files = {s: list_volumes(root, challenge, s, reader) for s in splits}
    return {
        "data": {"root": str(root), "files": file_manifest(p for s in splits for p in files[s])},
        "checkpoints": file_manifest([ckpt_path]),
        "masks": {
            "mask_func": describe_mask_func(mask_func),
            "seed": seed,
            "training": TRAIN_SEEDING,
            "validation": PER_FILE_SEEDING,
            "validation_volumes": volume_masks(
                files[splits[-1]], mask_func, challenge, splits[-1], reader
            ),
        },
    }


def eval_fields(
    settings: EvalSettings, report: EvalReport, checkpoints: Sequence[str]
) -> dict[str, Any]:
    """An evaluation segment's ``data`` (the evaluated and skipped volumes hashed),
    ``checkpoints`` (the input ``checkpoints`` hashed) and ``masks`` (each volume's mask as
    the report carries it: the mask that was scored)."""
    folder = settings.reader.folder(settings.root, settings.challenge, settings.split)
    evaluated = list(dict.fromkeys(r["fname"] for r in report.rows))
    files = [report.paths.get(f, folder / f) for f in evaluated]
    files += [s.path or folder / s.fname for s in report.skipped]
    return {
        "data": {"root": str(settings.root), "files": file_manifest(files)},
        "checkpoints": file_manifest(checkpoints),
        "masks": {
            "mask_func": describe_mask_func(settings.mask_func),
            "mask_name": settings.mask_name,
            "seeding": PER_FILE_SEEDING,
            "volumes": [mask_entry(f, vm) for f, vm in report.masks.items()],
        },
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _rank() -> int:
    """The global rank from the launcher's environment (0 outside DDP)."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


class RunRecord:
    """One segment of a run directory's ``provenance.json`` (see the module docstring).

    Args:
        run_dir: the run directory.
        config: the run's resolved config, a plain mapping (its ``methods``,
            ``ckpt_path`` and ``checkpoints`` name an evaluation's input checkpoints).
        hydra: Hydra's group choices and overrides, or None.
    """

    def __init__(
        self, run_dir: str | os.PathLike, config: dict[str, Any], hydra: dict[str, Any] | None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = _rank() == 0
        self.meter = ResourceMeter()
        self.segment: dict[str, Any] = {}
        if not self.enabled:
            return
        self.segment = {
            "status": "running",
            "started": _now(),
            "finished": None,
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "code": git_state(),
            "versions": package_versions(),
            "hardware": hardware(),
            "config": config,
            "hydra": hydra,
        }

    def start_train(self, mask_func: ColumnMaskFunc) -> RunRecord:
        """Start a training segment: hash the train and validation splits of the config's
        ``data``, describe the masks, and append the segment (``running``) to the run
        directory's record."""
        if not self.enabled:
            return self
        data, ckpt = self.segment["config"]["data"], self.segment["config"].get("ckpt_path")
        splits = [data.get("train_split", "train"), data.get("val_split", "val")]
        seed = self.segment["config"].get("seed")
        reader = get_reader(data.get("format", "fastmri"), data.get("format_options"))
        challenge = format_challenge(reader.name, data["challenge"])
        fields = train_fields(data["root"], challenge, splits, mask_func, seed, ckpt, reader)
        self.segment.update(resumed_from=ckpt, **fields)
        append_segment(self.run_dir, "train", self.segment)
        self.meter = ResourceMeter()  # the run's resources, not the hashing above
        return self

    def _finish(self, resources: dict[str, Any], outputs: dict[str, Any]) -> None:
        self.segment.update(
            status="completed", finished=_now(), resources=resources, outputs=outputs
        )

    def finish_train(self, result: Any, trainer: Any, slices: int | None) -> None:
        """Complete the segment of a training run's ``result`` (``lit.training.RunResult``)
        and its Lightning ``trainer``: resources, final metrics, checkpoints (the validated one
        hashed, for replay)."""
        if not self.enabled:
            return
        on_gpu = trainer.strategy.root_device.type == "cuda"
        resources = self.meter.read(num_gpus=trainer.world_size if on_gpu else 0, slices=slices)
        validated = file_manifest([result.checkpoint])
        self._finish(
            resources,
            {
                "table": "val_volumes.csv",
                "metrics": result.metrics,
                "validated_checkpoint": validated[0] if validated else None,
                "best_checkpoint": result.best_checkpoint,
                "last_checkpoint": result.last_checkpoint,
            },
        )
        replace_last_segment(self.run_dir, self.segment)

    def finish_eval(
        self, settings: EvalSettings, report: EvalReport, into: Path | None = None
    ) -> None:
        """Complete and write the segment: the evaluated (and skipped) volumes hashed, the
        input checkpoints hashed, each volume's mask as the report carries it (the mask
        that was scored), resources and the outputs. ``into``: the staging folder of the
        outputs (the record is published with them, as one set), else the run directory."""
        if not self.enabled:
            return
        first = report.rows[0]["method"]
        resources = self.meter.read(
            num_gpus=1 if settings.device.type == "cuda" else 0,
            slices=sum(r["num_slices"] for r in report.rows if r["method"] == first),
        )
        config = self.segment["config"]
        methods = config.get("methods") or []
        ckpts = [config.get("ckpt_path")] if "unet" in methods else []
        ckpts += [p for m, p in (config.get("checkpoints") or {}).items() if m in methods]
        self.segment.update(eval_fields(settings, report, ckpts))
        self._finish(resources, {"table": "per_volume.csv", "summary": "summary.md"})
        append_segment(self.run_dir, "eval", self.segment, into)
