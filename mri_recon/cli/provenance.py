"""``provenance.json`` for training and evaluation runs: the Hydra-aware half of the record.

:class:`RunRecord` gathers, when a run starts, the code (git commit, dirty tree, diff hash),
package versions, hardware, the resolved config and Hydra's choices; a training run also
hashes its data (train and validation splits) and writes the segment at once, so a killed
run leaves a ``running`` segment. When the run ends it adds the data manifest (evaluation:
the volumes evaluated; plus input checkpoints), the masks, the resources used and the
outputs, and rewrites the segment as ``completed``. An evaluation, whose outputs are
published all at once, writes its segment only then. A training run resumed in the same run
directory appends a segment (``resumed_from`` names the checkpoint). Only global rank 0
writes. The record format is in :mod:`mri_recon.runinfo.record`; ``mri-recon-replay``
reads it back.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.data.fastmri import DataError, list_volumes, read_volume_info, split_dir
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
    from mri_recon.evaluation import EvalReport, EvalSettings
    from mri_recon.lit.training import RunResult

PER_FILE_SEEDING = (
    "per file: mask_func(W, seed=file_seed(fname)), file_seed = tuple(map(ord, fname))"
)
TRAIN_SEEDING = (
    "per sample: mask_func(W, seed=mask_seeds(num_samples, seed, epoch)[index]) "
    "(mri_recon.lit.samplers: numpy SeedSequence([seed, epoch, 1]) -> torch.Generator)"
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _rank() -> int:
    """The global rank from the launcher's environment (0 outside DDP)."""
    return int(os.environ.get("RANK") or os.environ.get("LOCAL_RANK") or 0)


def resolved_config(cfg: DictConfig) -> dict[str, Any]:
    """The config as a plain dict, interpolations resolved (left as written where one cannot
    be resolved outside Hydra)."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]


def hydra_info() -> dict[str, Any] | None:
    """Hydra's group choices (e.g. ``mask: random_4x``) and the command-line overrides."""
    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    overrides = OmegaConf.select(hc, "overrides.task", default=None)
    return {
        "choices": dict(OmegaConf.select(hc, "runtime.choices", default={}) or {}),
        "overrides": list(overrides) if overrides is not None else None,
    }


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


def _files(paths: Iterable[str | os.PathLike | None]) -> list[dict[str, Any]]:
    return manifest(sorted({str(p) for p in paths if p}))


class RunRecord:
    """One segment of a run directory's ``provenance.json`` (see the module docstring).

    Args:
        cfg: the composed train or eval config (``paths.output_dir`` is the run directory).
    """

    def __init__(self, cfg: DictConfig) -> None:
        self.run_dir = Path(str(cfg.paths.output_dir))
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
            "config": resolved_config(cfg),
            "hydra": hydra_info(),
        }

    @classmethod
    def start_train(cls, cfg: DictConfig, mask_func: ColumnMaskFunc) -> RunRecord:
        """Start a training segment: hash the train and validation splits, describe the
        masks, and append the segment (``running``) to the run directory's record."""
        record = cls(cfg)
        if not record.enabled:
            return record
        data = cfg.data
        root, challenge = Path(str(data.root)), str(data.challenge)
        splits = [str(data.get("train_split", "train")), str(data.get("val_split", "val"))]
        files = {s: list_volumes(root, challenge, s) for s in splits}
        record.segment.update(
            resumed_from=cfg.get("ckpt_path"),
            data={"root": str(root), "files": _files(p for s in splits for p in files[s])},
            checkpoints=_files([cfg.get("ckpt_path")]),
            masks={
                "mask_func": describe_mask_func(mask_func),
                "seed": cfg.get("seed"),
                "training": TRAIN_SEEDING,
                "validation": PER_FILE_SEEDING,
                "validation_volumes": volume_masks(
                    files[splits[1]], mask_func, challenge, splits[1]
                ),
            },
        )
        append_segment(record.run_dir, "train", record.segment)
        record.meter = ResourceMeter()  # the run's resources, not the hashing above
        return record

    def _finish(self, resources: dict[str, Any], outputs: dict[str, Any]) -> None:
        self.segment.update(
            status="completed", finished=_now(), resources=resources, outputs=outputs
        )

    def finish_train(self, result: RunResult, trainer: Any, slices: int | None) -> None:
        """Complete the segment: resources, final metrics, checkpoints (the validated one
        hashed, for replay)."""
        if not self.enabled:
            return
        on_gpu = trainer.strategy.root_device.type == "cuda"
        resources = self.meter.read(num_gpus=trainer.world_size if on_gpu else 0, slices=slices)
        validated = _files([result.checkpoint])
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

    def finish_eval(self, settings: EvalSettings, report: EvalReport) -> None:
        """Complete and write the segment: the evaluated (and skipped) volumes hashed, the
        input checkpoints hashed, each volume's mask as the report carries it (the mask
        that was scored), resources and the outputs."""
        if not self.enabled:
            return
        first = report.rows[0]["method"]
        resources = self.meter.read(
            num_gpus=1 if settings.device.type == "cuda" else 0,
            slices=sum(r["num_slices"] for r in report.rows if r["method"] == first),
        )
        folder = split_dir(settings.root, settings.challenge, settings.split)
        evaluated = list(dict.fromkeys(r["fname"] for r in report.rows))
        config = self.segment["config"]
        methods = config.get("methods") or []
        ckpts = [config.get("ckpt_path")] if "unet" in methods else []
        ckpts += [p for m, p in (config.get("checkpoints") or {}).items() if m in methods]
        self.segment.update(
            data={
                "root": str(settings.root),
                "files": _files(
                    folder / f for f in [*evaluated, *(s.fname for s in report.skipped)]
                ),
            },
            checkpoints=_files(ckpts),
            masks={
                "mask_func": describe_mask_func(settings.mask_func),
                "mask_name": settings.mask_name,
                "seeding": PER_FILE_SEEDING,
                "volumes": [mask_entry(f, vm) for f, vm in report.masks.items()],
            },
        )
        self._finish(resources, {"table": "per_volume.csv", "summary": "summary.md"})
        append_segment(self.run_dir, "eval", self.segment)
