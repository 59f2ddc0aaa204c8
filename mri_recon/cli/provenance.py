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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.evaluation.provenance import eval_fields, file_manifest, train_fields
from mri_recon.physics.masks import ColumnMaskFunc
from mri_recon.runinfo import (
    ResourceMeter,
    append_segment,
    git_state,
    hardware,
    package_versions,
    replace_last_segment,
)

if TYPE_CHECKING:
    from mri_recon.evaluation import EvalReport, EvalSettings
    from mri_recon.lit.training import RunResult


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
        splits = [str(data.get("train_split", "train")), str(data.get("val_split", "val"))]
        record.segment.update(
            resumed_from=cfg.get("ckpt_path"),
            **train_fields(
                str(data.root),
                str(data.challenge),
                splits,
                mask_func,
                cfg.get("seed"),
                cfg.get("ckpt_path"),
            ),
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
        config = self.segment["config"]
        methods = config.get("methods") or []
        ckpts = [config.get("ckpt_path")] if "unet" in methods else []
        ckpts += [p for m, p in (config.get("checkpoints") or {}).items() if m in methods]
        self.segment.update(eval_fields(settings, report, ckpts))
        self._finish(resources, {"table": "per_volume.csv", "summary": "summary.md"})
        append_segment(self.run_dir, "eval", self.segment)
