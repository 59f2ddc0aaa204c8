"""A training run's checkpoints: written atomically, and tracked across a resume.

:class:`AtomicCheckpointIO` (the Trainer's ``plugins``) writes each checkpoint to a hidden
temporary file in its own folder and renames it into place, so a run killed while saving keeps
its previous ``last.ckpt`` loadable. Lightning's own writer goes through a temporary file in
``$TMPDIR``, which is a copy, not a rename, where that is another filesystem, and leaves the
checkpoint with mkstemp's mode 0600.

:class:`RunCheckpoint` is Lightning's ``ModelCheckpoint`` with two changes a resume relies on:
``last.ckpt`` is written after every validation (Lightning >= 2.5 writes it only when a top-k
checkpoint was saved in the same step, so with ``save_top_k=1`` it would only follow
``best.ckpt``), and the best score, top-k and last path survive a run directory that was moved
or copied (Lightning keeps them only when the checkpoint folder's path is unchanged).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from mri_recon.fileio import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to ``.<name>.<random>.tmp`` next to the checkpoint, fsync, rename."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` atomically (``storage_options`` is not supported)."""
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # from a run killed mid-save
            stale.unlink(missing_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that writes ``last.ckpt`` after every validation and keeps its
    best-checkpoint tracking when the run directory moved; arguments as ModelCheckpoint's.

    At the end of fit ``last.ckpt`` is written once more, carrying the last epoch's
    ``train/*`` metrics (:attr:`train_metrics`): a run killed during its final validation or
    final writes resumes with nothing left to train, and still reports them as the
    uninterrupted run does. A run stopped (``max_time``, ``max_steps``) before its first
    validation still ends with a ``last.ckpt``.
    """

    train_metrics: dict[str, float] = {}  # noqa: RUF012 (replaced, never mutated)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        fresh = {}
        for key, value in trainer.callback_metrics.items():
            if key.startswith("train/") and isinstance(value, torch.Tensor) and value.numel() == 1:
                fresh[key] = float(value.item())
        self.train_metrics = fresh or dict(self.train_metrics)  # a resume with no step left
        # every rank calls it (a collective); last_model_path is the same on every rank
        if self.save_last and self.last_model_path:
            trainer.save_checkpoint(self.last_model_path, self.save_weights_only)
        elif self.save_last:  # stopped (max_time, max_steps) before any validation saved one
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def state_dict(self) -> dict[str, Any]:
        """ModelCheckpoint's state plus :attr:`train_metrics`."""
        return {**super().state_dict(), "train_metrics": dict(self.train_metrics)}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_not_saved(trainer)

    def _save_last_if_not_saved(self, trainer: pl.Trainer) -> None:
        # skipped where anything was saved at this step already (then last.ckpt was too)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the tracking state, with paths in a moved run's old folder moved here."""
        self.train_metrics = dict(state_dict.get("train_metrics") or {})
        old = state_dict.get("dirpath")
        if old and self.dirpath and old != self.dirpath:

            def moved(path: Any) -> Any:
                inside = isinstance(path, str) and path.startswith(old + os.sep)
                return os.path.join(self.dirpath, os.path.relpath(path, old)) if inside else path

            state_dict = {
                **state_dict,
                **{k: moved(v) for k, v in state_dict.items() if k.endswith("_path")},
                "best_k_models": {moved(k): v for k, v in state_dict["best_k_models"].items()},
                "dirpath": self.dirpath,
            }
        super().load_state_dict(state_dict)
