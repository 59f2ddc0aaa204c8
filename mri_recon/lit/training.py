"""The Lightning side of a training run: seeding, fit (or resume), and the final validation.

``mri_recon.cli.train`` builds every object from the config and hands them here, so the
Lightning calls live in ``mri_recon.lit`` and the CLI stays a list of instantiations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_warn

from mri_recon.fileio import write_atomic, write_csv

VOLUME_COLUMNS = ("fname", "num_slices", "nmse", "psnr", "ssim")  # val_volumes.csv
# the checkpoints the final validation may load (validation_checkpoint; the CLI's validate_ckpt)
VALIDATE_CKPTS = ("best", "last")


@dataclass
class RunResult:
    """What a run leaves behind.

    Attributes:
        metrics: ``train/*`` of the last training epoch, ``val/*`` of the final validation,
            ``epoch`` (epochs completed) and ``global_step``, all floats.
        volumes: per-volume rows of the final validation (``fname, num_slices, nmse, psnr,
            ssim``), identical on every rank.
        checkpoint: the checkpoint the final validation loaded, or None (in-memory weights).
        best_checkpoint: ``checkpoints/best.ckpt`` (or None without a ModelCheckpoint).
        last_checkpoint: ``checkpoints/last.ckpt`` (or None).
        is_global_zero: whether this process is global rank 0 (the one that writes files).
    """

    metrics: dict[str, float]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: str | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    is_global_zero: bool = True

    def write(self, run_dir: str | os.PathLike) -> None:
        """Write ``metrics.json`` (final metrics and checkpoint paths) and ``val_volumes.csv``
        (per-volume metrics of the final validation) into ``run_dir``, atomically."""
        summary = {
            "metrics": self.metrics,
            "validated_checkpoint": self.checkpoint,
            "best_checkpoint": self.best_checkpoint,
            "last_checkpoint": self.last_checkpoint,
        }
        write_atomic(Path(run_dir) / "metrics.json", json.dumps(summary, indent=2) + "\n")
        write_csv(Path(run_dir) / "val_volumes.csv", self.volumes, VOLUME_COLUMNS)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (and DataLoader workers, through Lightning's init fn)."""
    pl.seed_everything(int(seed), workers=True, verbose=False)


@contextmanager
def torch_flags_restored() -> Iterator[None]:
    """Restore the process-wide determinism flags a Trainer sets (tests share a process)."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        if cublas is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = cublas


def callbacks_for_loggers(callbacks: list[Callback], loggers: list[Any]) -> list[Callback]:
    """Drop the callbacks that need a logger when there is none (``logger=none``).

    ``LearningRateMonitor`` raises at the start of fit without a logger; the other default
    callbacks (checkpoints, progress bar, validation table) work without one.
    """
    if loggers:
        return list(callbacks)
    kept = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if len(kept) < len(callbacks):
        rank_zero_warn("no logger configured: the LearningRateMonitor callback is left out")
    return kept


def _checkpoint_callback(trainer: pl.Trainer) -> ModelCheckpoint | None:
    callbacks = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
    return callbacks[0] if callbacks else None


def validation_checkpoint(trainer: pl.Trainer, which: str) -> str | None:
    """The checkpoint to validate after fit: ``best`` (falls back to last) or ``last`` (the
    CLI's ``validate_ckpt``, checked there).

    Returns:
        A path, or None when no checkpoint was written (validate the in-memory weights).
    """
    callback = _checkpoint_callback(trainer)
    if callback is None:
        return None
    candidates = [callback.best_model_path, callback.last_model_path]
    if which == "last":
        candidates.reverse()
    found = [p for p in candidates if p and os.path.isfile(p)]
    return found[0] if found else None


def _floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Scalar entries of a metrics mapping as floats."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)):
            out[str(key)] = float(value)
    return out


def fit_and_validate(
    trainer: pl.Trainer,
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    ckpt_path: str | None = None,
    validate_ckpt: str = "best",
) -> RunResult:
    """``trainer.fit`` (resuming from ``ckpt_path`` if given), then ``trainer.validate``.

    Args:
        trainer: the configured Trainer (loggers and callbacks attached).
        module: the LightningModule (``ReconModule``).
        datamodule: the data (``FastMRIDataModule``).
        ckpt_path: a ``last.ckpt`` to resume from: weights, optimizer and scheduler state,
            epoch and global step are restored, and the next epoch's order and masks are
            those an uninterrupted run draws.
        validate_ckpt: "best" or "last": the checkpoint the final validation loads.

    Returns:
        :class:`RunResult`.
    """
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    fit_metrics = _floats(trainer.callback_metrics)
    callback = _checkpoint_callback(trainer)
    carried = dict(getattr(callback, "train_metrics", {}))  # before validate reloads state
    checkpoint = validation_checkpoint(trainer, validate_ckpt)
    results = trainer.validate(module, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    metrics = {k: v for k, v in fit_metrics.items() if k.startswith("train/")}
    # a resume with nothing left to train logs no train/*: its checkpoint carries them
    metrics = metrics or carried
    for result in results:
        metrics.update(_floats(result))
    metrics["epoch"] = float(trainer.current_epoch)
    metrics["global_step"] = float(trainer.global_step)
    return RunResult(
        metrics=metrics,
        volumes=list(getattr(module, "last_val_table", []) or []),
        checkpoint=checkpoint,
        best_checkpoint=(callback.best_model_path or None) if callback else None,
        last_checkpoint=(callback.last_model_path or None) if callback else None,
        is_global_zero=trainer.is_global_zero,
    )
