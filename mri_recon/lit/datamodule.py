"""The LightningDataModule over the fastMRI data layer: fully sampled k-space plus column masks.

Data workers only read k-space and draw the (tiny) column mask; masking, the IFFT and the
crop run in :class:`mri_recon.lit.module.ReconModule` on the device over the whole batch
(``transform="device"``, the default). With ``transform="worker"`` the workers form the
zero-filled (h, w) image themselves (:func:`mri_recon.physics.zero_filled.zero_filled`, the
function the module and the evaluation use) and only it crosses to the device: multi-coil
k-space is C times larger.

Masks:
- training: a fresh mask per sample, seeded by ``(seed, epoch, sample index)`` through
  :class:`~mri_recon.lit.samplers.BucketBatchSampler` (no global RNG, no per-worker state),
  so a run resumed from a checkpoint draws the masks an uninterrupted run draws; a file that
  stores its own ``mask`` (an undersampled acquisition) is trained on that mask. Each item's
  ``sample_seed`` is its mask seed (training; SSDU's splits derive from it) or a seed fixed
  per (file, slice) (validation);
- validation: fastMRI's per-file mask ``mask_func(W, seed=file_seed(fname))`` (the same for
  every slice of a volume, and the one ``mri-recon-eval`` uses); a file that stores its own
  ``mask`` is validated with it.

Slices of different k-space shapes never share a batch: the sampler buckets them by
``SliceDataset.shape_key``. Under DDP the sampler shards batches across ranks itself, so the
trainer must run with ``use_distributed_sampler=False`` (the ``trainer/`` configs set it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from mri_recon.checks import boolean, integer, one_of, positive_int, rate
from mri_recon.data.fastmri import CHALLENGES
from mri_recon.data.formats import check_challenge, get_reader
from mri_recon.data.prescan import check_prescan
from mri_recon.data.slice_dataset import SliceDataset
from mri_recon.lit.samplers import BucketBatchSampler, mask_seeds
from mri_recon.physics.masks import (
    MASK_COLUMNS,
    ColumnMaskFunc,
    file_seed,
    mask_columns,
    seed_label,
)
from mri_recon.physics.zero_filled import zero_filled

# what an item carries over from its SliceDataset sample (its mask is drawn here)
ITEM_KEYS = (
    "kspace",
    "target",
    "max_value",
    "fname",
    "slice_num",
    "num_slices",
    "acquisition",
)
MASK_LOG_COLUMNS = ("epoch", "index", "fname", "slice_num", "acceleration", *MASK_COLUMNS)
TRANSFORMS = ("device", "worker")
_FLOAT_KEYS = ("max_value",)
_INT_KEYS = ("slice_num", "num_slices", "sample_seed")


class MaskedSlices(Dataset):
    """A :class:`SliceDataset` whose items carry their column mask, in the batch format.

    Args:
        dataset: the slices.
        mask_func: draws a bool (W,) column mask from a seed.
        per_file_masks: True (validation): the file's stored mask, else
            ``mask_func(W, seed=file_seed(fname))``; False (training): items are
            ``(index, mask_seed)`` pairs and the mask is ``mask_func(W, seed=mask_seed)``.
        transform: "device": items carry the k-space; "worker": items carry the zero-filled
            image instead (``image``, float32 (h, w)), formed here.
    """

    def __init__(
        self,
        dataset: SliceDataset,
        mask_func: ColumnMaskFunc,
        per_file_masks: bool,
        transform: str = "device",
    ) -> None:
        self.dataset, self.mask_func, self.per_file_masks = dataset, mask_func, per_file_masks
        self.transform = transform
        self._file_masks: dict[tuple[str, int], torch.Tensor] = {}  # (fname, W) -> mask

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """One slice.

        Args:
            item: an index (validation), or ``(index, mask_seed)`` (training).

        Returns:
            dict with ``kspace`` complex64 (C, H, W) fully sampled (transform "device") or
            ``image`` float32 (h, w) the zero-filled RSS image (transform "worker"),
            ``mask`` bool (W,),
            ``target`` float32 (h, w), ``max_value`` float, ``fname`` str, ``slice_num`` int,
            ``num_slices`` int, ``acquisition`` str, ``sample_seed`` int (the mask seed in
            training, a (file, slice) seed in validation). A file without target (kept with
            ``require_targets=False``) has an all-NaN ``target`` of its crop size.
        """
        index, mask_seed = item if isinstance(item, tuple) else (item, None)
        sample = self.dataset[index]
        width, stored = sample["kspace"].shape[-1], sample["mask"]
        if self.per_file_masks:
            mask = stored if stored.numel() else self._file_mask(sample["fname"], width)
            seed = np.random.SeedSequence([file_seed(sample["fname"]), sample["slice_num"]])
            mask_seed = int(seed.generate_state(1)[0])
        else:
            assert mask_seed is not None, "training items are (index, mask_seed) pairs"
            mask = stored if stored.numel() else self.mask_func(width, seed=int(mask_seed)).mask
        out = {key: sample[key] for key in ITEM_KEYS}
        out["mask"], out["sample_seed"] = mask, int(mask_seed)
        if not out["target"].numel():  # a file without target (self-supervised training)
            out["target"] = torch.full(sample["crop_size"], float("nan"))
            out["max_value"] = float("nan")  # not an attr max the file may still carry
        if self.transform == "worker":
            kspace = out.pop("kspace")[None]  # (1, C, H, W), fully sampled: masked in there
            out["image"] = zero_filled(kspace, mask[None], sample["crop_size"])[0]  # (h, w)
        return out

    def _file_mask(self, fname: str, width: int) -> torch.Tensor:
        """``mask_func(W, seed=file_seed(fname)).mask``, drawn once per file and process."""
        key = (fname, width)
        if key not in self._file_masks:
            self._file_masks[key] = self.mask_func(width, seed=file_seed(fname)).mask
        return self._file_masks[key]


def collate_slices(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack same-shaped slices into a batch; strings stay lists.

    Args:
        samples: items of :class:`MaskedSlices` (every tensor the same shape across items).

    Returns:
        dict with ``kspace`` complex64 (B, C, H, W), ``mask`` bool (B, W), ``target`` float32
        (B, h, w), ``max_value`` float32 (B,), ``slice_num`` and ``num_slices`` int64 (B,),
        ``fname`` and ``acquisition`` list[str]; other keys: tensors stacked, the rest listed.

    Raises:
        ValueError: a tensor's shape differs across the batch (named with the files).
    """
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        if key in _FLOAT_KEYS:
            batch[key] = torch.tensor([float(v) for v in values], dtype=torch.float32)
        elif key in _INT_KEYS:
            batch[key] = torch.tensor([int(v) for v in values], dtype=torch.int64)
        elif isinstance(values[0], torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                names = sorted({str(s.get("fname", "?")) for s in samples})
                raise ValueError(
                    f"collate_slices: '{key}' shapes {sorted(shapes)} differ "
                    f"within one batch (files {names}); batch by shape_key"
                )
            batch[key] = torch.stack(values)
        else:
            batch[key] = list(values)
    return batch


class FastMRIDataModule(pl.LightningDataModule):
    """Train and validation slices of a fastMRI-layout data root, batched by k-space shape.

    Args:
        root: data root holding ``<challenge>_<split>/*.h5``.
        challenge: "singlecoil" or "multicoil".
        mask_func: the column mask function (``mask/*.yaml``).
        batch_size: training slices per batch (slices of different shapes never share one).
        num_workers: DataLoader worker processes (each keeps its own open file handles).
        val_batch_size: validation slices per batch; None: ``batch_size``.
        acquisitions: keep only volumes with one of these ``acquisition`` attrs (both splits).
        sample_rate: fraction of training slices kept, drawn with ``seed``.
        val_sample_rate: fraction of validation slices kept (per-volume metrics are then
            computed over the kept slices only).
        volume_sample_rate: fraction of training volumes kept (not with ``sample_rate`` < 1).
        seed: the run seed: training order, masks and subsets depend on it alone.
        train_split: split folder to train on.
        val_split: split folder to validate on.
        pin_memory: pin batches in page-locked memory (GPU training).
        persistent_workers: keep worker processes (and their open files) across epochs.
        prefetch_factor: batches each worker loads ahead; None: PyTorch's default (2).
            Both only apply with ``num_workers`` > 0.
        transform: "device" (default): workers read k-space, the module masks, IFFTs and
            crops the batch on its device; "worker": workers form the zero-filled image.
        format: the data format (:data:`~mri_recon.data.formats.FORMATS`, docs/DATASETS.md);
            ``cc359``, ``m4raw`` and ``cmrxrecon`` data are multi-coil (``challenge`` must
            then be ``multicoil``: the config sets it from the format).
        format_options: the format's own options (target, crop, masks: see its reader).
        require_targets: True (supervised): every file needs its target; False
            (self-supervised, ``training=ssdu``): files without one are kept in both splits
            (validation scores the files that have one; ``val/loss`` covers all).
        prescan: "full": :meth:`setup` checks every slice of every kept volume for NaN/Inf
            (cached per file outside the data folders) before anything is trained or
            logged; "header": header checks only, and a bad slice read in training stops
            the run with a DataError naming the file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        challenge: str,
        mask_func: ColumnMaskFunc,
        batch_size: int = 1,
        num_workers: int = 0,
        val_batch_size: int | None = None,
        acquisitions: Sequence[str] | None = None,
        sample_rate: float = 1.0,
        val_sample_rate: float = 1.0,
        volume_sample_rate: float | None = None,
        seed: int = 0,
        train_split: str = "train",
        val_split: str = "val",
        pin_memory: bool = False,
        prescan: str = "full",
        persistent_workers: bool = True,
        prefetch_factor: int | None = None,
        transform: str = "device",
        format: str = "fastmri",
        format_options: Mapping[str, Any] | None = None,
        require_targets: bool = True,
    ) -> None:
        super().__init__()
        boolean("require_targets", require_targets)
        one_of("challenge", challenge, CHALLENGES)
        check_challenge(format, challenge)
        self.format, self.format_options = format, dict(format_options or {})
        get_reader(format, self.format_options)  # format and its options checked here
        positive_int("batch_size", batch_size)
        integer("num_workers", num_workers, 0)
        integer("seed", seed, 0)
        positive_int("val_batch_size", val_batch_size, optional=True)
        positive_int("prefetch_factor", prefetch_factor, optional=True)
        one_of("transform", transform, TRANSFORMS)
        boolean("persistent_workers", persistent_workers)
        rate("sample_rate", sample_rate)
        rate("val_sample_rate", val_sample_rate)
        rate("volume_sample_rate", volume_sample_rate, optional=True)
        self.root, self.challenge, self.mask_func = root, challenge, mask_func
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_batch_size = batch_size if val_batch_size is None else val_batch_size
        self.acquisitions = None if acquisitions is None else list(acquisitions)
        self.sample_rate, self.val_sample_rate = sample_rate, val_sample_rate
        self.volume_sample_rate, self.seed = volume_sample_rate, seed
        self.train_split, self.val_split, self.pin_memory = train_split, val_split, pin_memory
        self.prescan = check_prescan(prescan)
        self.persistent_workers, self.prefetch_factor = persistent_workers, prefetch_factor
        self.transform, self.require_targets = transform, require_targets
        self.train_dataset: SliceDataset | None = None
        self.val_dataset: SliceDataset | None = None

    def setup(self, stage: str | None = None) -> None:
        """Index and prescan the splits the stage needs (k-space is then read lazily)."""
        if stage in ("fit", None) and self.train_dataset is None:
            self.train_dataset = SliceDataset(
                self.root,
                self.challenge,
                self.train_split,
                acquisitions=self.acquisitions,
                sample_rate=self.sample_rate,
                volume_sample_rate=self.volume_sample_rate,
                seed=self.seed,
                prescan=self.prescan,
                format=self.format,
                format_options=self.format_options,
                require_target=self.require_targets,
            )
        if stage in ("fit", "validate", None) and self.val_dataset is None:
            self.val_dataset = SliceDataset(
                self.root,
                self.challenge,
                self.val_split,
                acquisitions=self.acquisitions,
                sample_rate=self.val_sample_rate,
                seed=self.seed,
                prescan=self.prescan,
                format=self.format,
                format_options=self.format_options,
                require_target=self.require_targets,
            )

    def train_masks(self, epoch: int) -> list[dict[str, Any]]:
        """The column mask every training sample gets in ``epoch``, one row per dataset
        index (:data:`MASK_LOG_COLUMNS`): the mask :class:`MaskedSlices` draws from the
        sampler's seed, ``mask_func(W, seed=mask_seeds(N, seed, epoch)[index])``, redrawn
        here (a pure function of W and the seed) so that every rank's samples are listed;
        a file's stored mask as type ``stored``. The seed is also the sample's
        ``sample_seed`` (SSDU's splits: ``physics.ssdu.split_seed(seed, k)``).
        """
        self.setup("fit")
        dataset = self.train_dataset
        assert dataset is not None
        seeds = mask_seeds(len(dataset), self.seed, epoch).tolist()
        rows = []
        for index, (seed, (vol, slice_num)) in enumerate(zip(seeds, dataset.samples, strict=True)):
            info = dataset.volumes[vol]
            if info.mask is not None:  # the file's own acquisition; the seed still seeds SSDU
                mask, kind, accel = torch.from_numpy(info.mask), "stored", info.acceleration
                low = info.num_low_frequencies
            else:
                s = self.mask_func(info.image_shape[1], seed=seed)
                mask, kind, accel = s.mask, self.mask_func.mask_type, s.acceleration
                low = s.num_low_frequencies
            rows.append(
                {
                    "epoch": epoch,
                    "index": index,
                    "fname": info.fname,
                    "slice_num": slice_num,
                    "acceleration": accel,
                    **mask_columns(mask, kind, seed_label(seed), low),
                }
            )
        return rows

    def train_dataloader(self) -> DataLoader:
        """Shuffled batches of (k-space, fresh mask) pairs; call ``set_epoch`` per epoch."""
        self.setup("fit")
        assert self.train_dataset is not None
        return self._loader(self.train_dataset, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        """Batches in a fixed order with fastMRI's per-file masks."""
        self.setup("validate")
        assert self.val_dataset is not None
        return self._loader(self.val_dataset, self.val_batch_size, train=False)

    def teardown(self, stage: str | None = None) -> None:
        """Close the file handles this process opened."""
        for dataset in (self.train_dataset, self.val_dataset):
            if dataset is not None:
                dataset.close()

    def _loader(self, dataset: SliceDataset, batch_size: int, train: bool) -> DataLoader:
        self._check_trainer_sampling()
        sampler = BucketBatchSampler(
            [dataset.shape_key(i) for i in range(len(dataset))],
            batch_size,
            shuffle=train,
            seed=self.seed,
            with_mask_seeds=train,
        )
        workers = self.num_workers > 0
        return DataLoader(
            MaskedSlices(dataset, self.mask_func, not train, self.transform),
            batch_sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_slices,
            pin_memory=self.pin_memory,
            persistent_workers=workers and self.persistent_workers,
            prefetch_factor=self.prefetch_factor if workers else None,
        )

    def _check_trainer_sampling(self) -> None:
        """Refuse Lightning's DistributedSampler injection: the batch sampler shards itself."""
        trainer = self.trainer
        if trainer is None or trainer.world_size <= 1:
            return
        if getattr(trainer._accelerator_connector, "use_distributed_sampler", False):
            raise ValueError(
                "trainer.use_distributed_sampler must be false: FastMRIDataModule "
                "shards its shape-bucketed batches across ranks itself"
            )
