"""Reporting of validation results: image rows for TensorBoard and the metrics table.

``ReconModule`` collects a few fixed validation slices and calls :func:`log_image_rows`;
:class:`ValidationTable` prints the per-volume table after ``trainer.validate`` and at the
end of ``trainer.fit``. :class:`MaskLog` records every training epoch's masks.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from mri_recon.fileio import write_atomic
from mri_recon.lit.datamodule import MASK_LOG_COLUMNS


def comparison_row(
    target: torch.Tensor, zero_filled: torch.Tensor, recon: torch.Tensor
) -> torch.Tensor:
    """One image ``[target | zero-filled | output | |output - target|]`` for display.

    The first three panels share one grey scale (0 .. target max); the error panel is
    scaled to its own max so small errors stay visible.

    Args:
        target: float (h, w).
        zero_filled: float (h, w).
        recon: float (h, w).

    Returns:
        float32 (1, h, 4 w) in [0, 1] (CHW, as ``SummaryWriter.add_image`` expects).
    """
    t, z, r = (x.detach().float().cpu() for x in (target, zero_filled, recon))
    scale = t.max().clamp_min(1e-12)
    error = (r - t).abs()
    error = error / error.max().clamp_min(1e-12)
    panels = [(t / scale).clamp(0, 1), (z / scale).clamp(0, 1), (r / scale).clamp(0, 1), error]
    return torch.cat(panels, dim=-1).unsqueeze(0)  # (1, h, 4 w)


def log_image_rows(loggers: Iterable[Any], rows: dict[str, torch.Tensor], global_step: int) -> int:
    """Send ``rows`` (tag -> (1, h, w) image) to every logger that can show images.

    Args:
        loggers: Lightning loggers (``trainer.loggers``); those whose ``experiment`` has
            ``add_image`` (TensorBoard) get the images, others (CSV) are skipped.
        rows: tag -> float32 (1, h, w) in [0, 1].
        global_step: the step to file the images under.

    Returns:
        The number of loggers written to.
    """
    written = 0
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if not callable(getattr(type(experiment), "add_image", None)):
            continue
        for tag, image in rows.items():
            experiment.add_image(tag, image, global_step=global_step)
        written += 1
    return written


def format_table(table: list[dict[str, Any]], metrics: dict[str, float]) -> str:
    """Plain-text per-volume table plus the mean over volumes.

    Args:
        table: rows from :func:`mri_recon.metrics.accumulate.volume_table`.
        metrics: the means from :func:`mri_recon.metrics.accumulate.mean_over_volumes`.

    Returns:
        The table as a multi-line string.
    """
    width = max([len("volume")] + [len(str(row["fname"])) for row in table])
    lines = [f"{'volume':<{width}}  slices      SSIM   PSNR dB      NMSE"]
    for row in table:
        lines.append(
            f"{row['fname']:<{width}}  {row['num_slices']:>6}  {row['ssim']:8.4f}  "
            f"{row['psnr']:8.2f}  {row['nmse']:8.4f}"
        )
    lines.append(
        f"{'mean (' + str(len(table)) + ' volumes)':<{width}}  {'':>6}  {metrics['ssim']:8.4f}  "
        f"{metrics['psnr']:8.2f}  {metrics['nmse']:8.4f}"
    )
    return "\n".join(lines)


class ValidationTable(pl.Callback):
    """Print the per-volume validation table (global rank 0 only).

    Printed after ``trainer.validate`` and once at the end of ``trainer.fit`` (the last
    validation), or after every validation epoch with ``every_epoch=True``.

    Args:
        every_epoch: also print after each validation epoch during fit.
    """

    def __init__(self, every_epoch: bool = False) -> None:
        self.every_epoch = every_epoch

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print after ``validate`` (or every epoch during ``fit`` if asked)."""
        if trainer.sanity_checking:
            return
        if self.every_epoch or trainer.state.fn == "validate":
            self._print(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Print the last validation of the run."""
        if not self.every_epoch:
            self._print(trainer, pl_module)

    @staticmethod
    def _print(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        table = getattr(pl_module, "last_val_table", None)
        metrics = getattr(pl_module, "last_val_metrics", None)
        if trainer.is_global_zero and table and metrics:
            print(f"\nvalidation (epoch {trainer.current_epoch}, step {trainer.global_step})")
            print(format_table(table, metrics), flush=True)


class SliceCounter(pl.Callback):
    """Count the slices this process trains on and validates (not the sanity check), for
    the run record's slices per second. Under DDP each rank counts its own shard."""

    def __init__(self) -> None:
        self.slices = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.slices += int(batch["target"].shape[0])

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking:
            self.slices += int(batch["target"].shape[0])


class MaskLog(pl.Callback):
    """Append each training epoch's masks to a CSV (``masks.csv`` of the run directory), one
    row per training sample (:data:`~mri_recon.lit.datamodule.MASK_LOG_COLUMNS`, from
    ``FastMRIDataModule.train_masks``), so two runs can be checked to have drawn the same.

    Only global rank 0 writes. An epoch's rows are written in one append when the epoch
    starts; when training starts (also on a resume) the file keeps only the whole rows of
    the epochs before the first one this run trains, so a killed run's partial epoch is
    dropped and the file ends up as an uninterrupted run's.

    Args:
        path: the CSV file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Drop the rows of the epochs from ``trainer.current_epoch`` on."""
        if not trainer.is_global_zero or not self.path.exists() or not self.path.stat().st_size:
            return
        header, *lines = self.path.read_text().splitlines(keepends=True)
        kept = [
            line
            for line in lines
            if line.endswith("\n") and int(line.split(",", 1)[0]) < trainer.current_epoch
        ]
        write_atomic(self.path, "".join([header, *kept]))

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Append this epoch's rows."""
        if not trainer.is_global_zero:
            return
        rows = trainer.datamodule.train_masks(trainer.current_epoch)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=MASK_LOG_COLUMNS, lineterminator="\n")
        if not self.path.exists() or self.path.stat().st_size == 0:
            writer.writeheader()
        writer.writerows(rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
