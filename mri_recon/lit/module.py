"""One LightningModule for every network: the network arrives already built.

Batches (dicts from ``mri_recon.lit.datamodule``; all samples share shapes):
``kspace`` complex64 (B, C, H, W) fully sampled (or, with ``data.transform=worker``,
``image`` float32 (B, h, w) the zero-filled image formed by the workers); ``mask`` bool (B, W); ``target`` float32
(B, h, w); ``max_value`` float32 (B,) target volume max; ``fname`` list[str];
``slice_num`` int64 (B,); ``num_slices`` int64 (B,); ``acquisition`` list[str]. The masking
(here) and the trainable's physics (IFFT, crop) run on the module's device, over the whole
batch.

What the loss compares is the trainable's business (:class:`mri_recon.contract.Trainable`):
the module hands it a :class:`~mri_recon.contract.TrainingBatch` (masked k-space or the
workers' zero-filled image, the crop windows it drew) and the loss the
:class:`~mri_recon.contract.LossTerms` it returns. An image network is wrapped in
:class:`ImageReconstructor` (fastMRI's ``UnetModule``: normalised units, optionally on random
crops); a :class:`mri_recon.models.varnet.VarNet` compares its reconstruction with the target
on the target's scale (fastMRI's ``VarNetModule``); any other trainable plugs in the same way.
Validation reconstructs full slices exactly as the evaluation CLI does and logs per-volume
``val/ssim``, ``val/psnr``, ``val/nmse`` (identical on every rank, see
:mod:`mri_recon.metrics.accumulate`).

Precision: under a mixed-precision trainer (``trainer.precision=bf16-mixed`` or ``16-mixed``)
only the network runs in reduced precision. The physics (complex k-space, masking, FFTs,
crop), the normalisation statistics, losses and metrics run with autocast disabled, on
float32, and the network output is cast back to float32 before them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, NoReturn

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import Parameter
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from mri_recon.checks import boolean, integer, one_of, positive_int
from mri_recon.contract import CropWindows, Loss, LossTerms, TrainingBatch, check_inputs
from mri_recon.data.h5 import DataError
from mri_recon.lit.callbacks import comparison_row, log_image_rows
from mri_recon.lit.checkpoint import (
    CHECKPOINT_KEY,
    FORMAT_VERSION,
    NET_PREFIX,
    net_spec_of,
    to_plain,
)
from mri_recon.metrics.accumulate import (
    SliceStats,
    gather_records,
    mean_over_volumes,
    slice_stats,
    volume_table,
)
from mri_recon.models.losses import L1Loss
from mri_recon.models.reconstructor import as_reconstructor
from mri_recon.physics.masks import apply_mask
from mri_recon.physics.zero_filled import zero_filled

# the keys every batch must have (plus ``kspace``, or ``image`` under data.transform=worker)
REQUIRED_KEYS = ("mask", "target", "max_value", "fname", "slice_num")
COMPILE_MODES = (None, "default", "max-autotune")


class ReconModule(pl.LightningModule):
    """Train and validate a network as a reconstructor (:func:`as_reconstructor`).

    Args:
        net: a :class:`~mri_recon.contract.Trainable` (e.g. ``VarNet``), trained as it is, or
            an image network float (B, 1, h, w) -> (B, 1, h, w) (e.g. ``Unet``), wrapped in
            :class:`ImageReconstructor` (built by Hydra).
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_``, e.g. ``Adam(lr=...)``).
        scheduler: ``Optimizer -> LRScheduler`` stepped every epoch, or None.
        loss: ``loss(terms) -> scalar`` on the trainable's :class:`LossTerms`; default L1.
        train_crop_size: side of the random square training crop (clipped to the image);
            None trains on whole slices.
        num_log_images: validation slices logged as images (TensorBoard), fixed per run.
        net_spec: the resolved model config ``{"_target_": ..., **kwargs}`` stored in the
            checkpoint; None infers it from ``net``'s attributes (works for ``Unet``).
        seed: seed of the crop locations (with the global step and the rank).
        channels_last: store the network's weights (hence its activations) in channels-last
            memory format (faster convolutions on tensor cores).
        compile: ``torch.compile`` mode of the network (``"default"``, ``"max-autotune"``) or
            None (eager). Compiled in place (``nn.Module.compile``, static shapes), so the
            state-dict keys and checkpoints are those of the eager network.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[[Iterable[Parameter]], Optimizer],
        scheduler: Callable[[Optimizer], LRScheduler] | None = None,
        loss: Loss | None = None,
        train_crop_size: int | None = None,
        num_log_images: int = 4,
        net_spec: dict | None = None,
        seed: int = 0,
        channels_last: bool = False,
        compile: str | None = None,
    ) -> None:
        super().__init__()
        _check_arguments(train_crop_size, num_log_images, channels_last, compile)
        net_spec = to_plain(net_spec) if net_spec is not None else net_spec_of(net)
        if not isinstance(net_spec, dict) or not isinstance(net_spec.get("_target_"), str):
            raise TypeError(f"net_spec must be a mapping with a '_target_', got {net_spec!r}")
        # built once here, so that a bad optim or scheduler group fails before training
        trial = _build_once(optimizer, net.parameters(), "optim", Optimizer)
        if any(not group["lr"] > 0 for group in trial.param_groups):
            raise ValueError(f"optim.lr must be > 0, got {trial.param_groups[0]['lr']!r}")
        if scheduler is not None:
            _build_once(scheduler, trial, "scheduler", LRScheduler)
        # channels_last and compile change how the network runs, not what it computes: a run
        # may resume or be evaluated with other values
        self.save_hyperparameters(
            ignore=["net", "optimizer", "scheduler", "loss", "channels_last", "compile"]
        )
        if channels_last:
            net = net.to(memory_format=torch.channels_last)
        if compile is not None:
            # in place (no _orig_mod. prefix); dynamic=False: one graph per input shape, see
            # docs/PERFORMANCE.md for how many shapes a run has
            net.compile(mode=compile, dynamic=False)
        self.reconstructor = as_reconstructor(net)
        # where the network's weights live in the state dict (a VarNet is the reconstructor)
        self._net_prefix = "reconstructor." if self.reconstructor is net else NET_PREFIX
        self.loss = loss if loss is not None else L1Loss()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self._val_records: list[SliceStats] = []
        self._log_keys: dict[str, int] = {}  # fname -> slice_num of the logged slice
        self._val_images: dict[str, torch.Tensor] = {}
        self.last_val_table: list[dict[str, Any]] = []
        self.last_val_metrics: dict[str, float] = {}

    def forward(
        self,
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        sens_maps: torch.Tensor | None,
        crop_size: tuple[int, int],
    ) -> torch.Tensor:
        """The reconstructor contract: complex64 (B, C, H, W), bool (B, W) -> float32 (B, h, w)."""
        return self.reconstructor(masked_kspace, mask, sens_maps, crop_size)

    def _float32(self) -> AbstractContextManager:
        """Autocast off: the physics, statistics, losses and metrics run in float32."""
        return torch.autocast(self.device.type, enabled=False)

    def _terms(self, batch: dict[str, Any], crop: CropWindows | None = None) -> LossTerms:
        """The trainable's loss terms for ``batch`` (the masking runs in float32; the
        trainable runs its physics in float32 and its network under the trainer's autocast,
        if any). A batch carries ``kspace``, or ``image`` (the zero-filled image formed by
        the data workers), which a trainable that ``needs_kspace`` cannot use."""
        use_kspace = "kspace" in batch or "image" not in batch or self.reconstructor.needs_kspace
        required = (*REQUIRED_KEYS, "kspace") if use_kspace else REQUIRED_KEYS
        missing = [k for k in required if k not in batch]
        if missing:
            needs = f" ({self.reconstructor.name} trains on k-space)" if "image" in batch else ""
            raise ValueError(f"batch is missing key(s) {missing}{needs}; it has {sorted(batch)}")
        masked_kspace = None
        if use_kspace:
            check_inputs(batch["kspace"], batch["mask"], None, batch["target"].shape[-2:])
            with self._float32():
                masked_kspace = apply_mask(batch["kspace"], batch["mask"])
        inputs = TrainingBatch(
            mask=batch["mask"],
            target=batch["target"],
            max_value=batch["max_value"],
            masked_kspace=masked_kspace,
            zero_filled=None if use_kspace else batch["image"],
            crop=crop,
            sample_seed=batch.get("sample_seed"),
        )
        return self.reconstructor.loss_terms(inputs)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """The configured loss on the trainable's terms, on random crops if configured."""
        crop = None
        if self.hparams.train_crop_size is not None:
            generator = self._crop_generator(batch_idx)
            shape = tuple(batch["target"].shape)  # (B, h, w)
            crop = CropWindows.random(shape, self.hparams.train_crop_size, generator)
        terms = self._terms(batch, crop)
        with self._float32():
            loss = self.loss(terms)
        if not torch.isfinite(loss.detach()).item():
            _stop_non_finite(batch, f"the training loss is {loss.item()}", terms.pred, terms.ref)
        # The per-step curve keeps the plain key `train/loss` (the interface the loggers and
        # scripts/compare_runs.py read); the epoch mean is logged under its own name.
        n = terms.pred.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=n)
        self.log(
            "train/loss_epoch", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=n
        )
        return loss

    def _crop_generator(self, batch_idx: int) -> torch.Generator:
        """A CPU generator seeded by (seed, global step, batch index, rank).

        Resumed runs replay an uninterrupted run's crops; the batch index separates the
        micro-batches of one optimizer step under gradient accumulation.
        """
        keys = [self.hparams.seed, self.global_step, batch_idx, self.global_rank]
        state = np.random.SeedSequence(keys)
        return torch.Generator().manual_seed(int(state.generate_state(1)[0]))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Full-slice reconstruction; per-slice statistics for the per-volume metrics."""
        terms = self._terms(batch)
        recon = terms.recon  # (B, h, w)
        with self._float32():
            loss = self.loss(terms)
            if not (torch.isfinite(loss.detach()) & torch.isfinite(recon.detach()).all()).item():
                _stop_non_finite(batch, "validation is not finite", recon, batch["target"])
            # the metrics score the slices that have a target (a file without one, allowed
            # under self-supervised training, counts in val/loss only)
            scored = torch.isfinite(batch["max_value"]).nonzero().squeeze(-1).tolist()
            if scored:
                self._val_records.extend(
                    slice_stats(
                        [batch["fname"][i] for i in scored],
                        batch["slice_num"][scored],
                        batch["target"][scored],
                        recon[scored],
                        batch["max_value"][scored],
                    )
                )
        self.log("val/loss", loss, sync_dist=True, batch_size=recon.shape[0])
        self._keep_images(batch, recon)

    def _keep_images(self, batch: dict[str, Any], recon: torch.Tensor) -> None:
        """Keep the first slice seen of each of the first ``num_log_images`` volumes."""
        slice_nums = batch["slice_num"].tolist()  # one host sync per batch, not per slice
        for i, (fname, slice_num) in enumerate(zip(batch["fname"], slice_nums, strict=True)):
            if fname not in self._log_keys and len(self._log_keys) < self.hparams.num_log_images:
                self._log_keys[fname] = slice_num
            if self._log_keys.get(fname) == slice_num:
                tag = f"val_images/{fname}_slice{slice_num:03d}"
                target, one = batch["target"][i], slice(i, i + 1)
                if "image" in batch:  # zero-filled by the data workers
                    zf = batch["image"][i]
                else:
                    with self._float32():
                        mask = batch["mask"][one]
                        masked = apply_mask(batch["kspace"][one], mask)
                        zf = zero_filled(masked, mask, target.shape)[0]  # (h, w)
                self._val_images[tag] = comparison_row(target, zf, recon[i])

    def on_validation_epoch_start(self) -> None:
        """Start a fresh set of slice records and images."""
        self._val_records = []
        self._val_images = {}

    def on_validation_epoch_end(self) -> None:
        """Gather the slice records of all ranks, log per-volume means, log images."""
        records = gather_records(self._val_records)  # collective: every rank calls it
        self._val_records = []
        if not records:
            return
        self.last_val_table = volume_table(records)
        self.last_val_metrics = mean_over_volumes(self.last_val_table)
        for name in ("ssim", "psnr", "nmse"):
            # identical on all ranks; a max-reduce keeps it bit-exact and silences the DDP hint
            self.log(
                f"val/{name}",
                self.last_val_metrics[name],
                prog_bar=name == "ssim",
                sync_dist=True,
                reduce_fx="max",
            )
        if self._val_images and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            log_image_rows(self.loggers, self._val_images, self.global_step)

    def configure_optimizers(self) -> Any:
        """Optimizer from the partial; the scheduler (if any) steps once per epoch."""
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Make the checkpoint self-contained: the net spec and where its weights live."""
        checkpoint[CHECKPOINT_KEY] = {
            "format_version": FORMAT_VERSION,
            "net_spec": self.hparams.net_spec,
            "net_prefix": self._net_prefix,
            "name": self.reconstructor.name,
        }


def _stop_non_finite(batch: dict[str, Any], what: str, *tensors: torch.Tensor) -> NoReturn:
    """Raise DataError ``<fname> slice <n>: <what> (...)`` naming the first slice of the
    batch whose target or prediction (B, ...) is not finite (else the first slice): a NaN
    must stop training before a checkpoint is written, not be averaged into the curves."""
    finite = torch.ones(len(batch["fname"]), dtype=torch.bool)
    for t in (batch["target"], *tensors):
        finite &= torch.isfinite(t.detach().reshape(t.shape[0], -1)).all(dim=1).cpu()
    i = int(torch.argmin(finite.to(torch.uint8)))
    slice_num = int(batch["slice_num"][i])
    raise DataError(
        f"{batch['fname'][i]} slice {slice_num}: {what} (NaN or Inf in its input, target or "
        "prediction; check the file with mri-recon-data check --rescan)"
    )


def _check_arguments(
    train_crop_size: Any, num_log_images: Any, channels_last: Any, compile: Any
) -> None:
    """Raise ValueError naming the argument that is out of range."""
    positive_int("train_crop_size", train_crop_size, optional=True)
    integer("num_log_images", num_log_images, 0)
    boolean("channels_last", channels_last)
    one_of("compile", compile, COMPILE_MODES)


def _build_once(factory: Any, arg: Any, group: str, base: type) -> Any:
    """``factory(arg)``, checked to be a ``base`` (a factory of another class is not called),
    with torch's own checks (lr, weight_decay, betas, ...) as errors naming ``group``."""
    target = getattr(factory, "func", factory)  # Hydra's _partial_ is a functools.partial
    other_class = isinstance(target, type) and not issubclass(target, base)
    try:
        built = None if other_class or not callable(factory) else factory(arg)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{group}: {err}") from None
    if not isinstance(built, base):
        name = getattr(target, "__name__", repr(target))
        raise TypeError(
            f"{group}._target_: {name} is not an {base.__name__} (built {type(built).__name__})"
        )
    return built
