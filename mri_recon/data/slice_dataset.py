"""The 2-D slices of one fastMRI split as a lazy ``torch`` dataset.

Volumes are indexed and validated from their headers at construction
(:func:`mri_recon.data.fastmri.read_volume_info`) and, with ``prescan="full"``, every slice
of the kept volumes is checked for NaN/Inf before the dataset exists
(:func:`mri_recon.data.prescan.scan_values`, cached outside the data folders); slices are read
on access through one read-only handle per file and process.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mri_recon.checks import positive_int
from mri_recon.data.fastmri import VolumeInfo
from mri_recon.data.formats import format_challenge, get_reader
from mri_recon.data.formats.base import SliceSource
from mri_recon.data.h5 import DataError, check_finite
from mri_recon.data.prescan import scan_values
from mri_recon.physics.crop import center_crop


def _subsample(count: int, rate: float, rng: np.random.Generator) -> list[int]:
    """Sorted indices of ``max(1, round(count * rate))`` of ``range(count)``, drawn by ``rng``."""
    if rate >= 1.0:
        return list(range(count))
    keep = rng.choice(count, size=max(1, round(count * rate)), replace=False)
    return sorted(int(i) for i in keep)


def _resolve_files(folder: Path, files: Sequence[str | os.PathLike]) -> list[Path]:
    """Bare file names are taken from the split folder; other paths as given."""
    paths = [folder / p if len(Path(p).parts) == 1 else Path(p) for p in files]
    if not paths:
        raise DataError(folder, "files=[] selects no volume")
    for p in paths:
        if not p.is_file():
            raise DataError(p, "no such file (listed in files=)")
    return paths


class SliceDataset(torch.utils.data.Dataset):
    """The 2-D slices of one split, indexed from headers at construction, read lazily.

    Each worker process keeps one open read-only handle per file (at most ``max_open_files``,
    least recently used closed first), opened on first access in that process and dropped on
    pickling, so a file is not reopened per slice.

    Args:
        root: data root holding ``<challenge>_<split>/``.
        challenge: "singlecoil" or "multicoil".
        split: "train", "val", "test" or "challenge".
        acquisitions: keep only volumes whose attr ``acquisition`` is one of these.
        sample_rate: fraction of slices kept (at least one), in (0, 1], drawn with ``seed``.
        volume_sample_rate: fraction of volumes kept (at least one), in (0, 1] or None (all);
            not with ``sample_rate``.
        seed: seed of the ``numpy.random.default_rng`` that draws the subsets.
        files: volumes to index instead of the whole split (bare names are in the split folder).
        max_open_files: open handles kept per process.
        prescan: "full": every slice of the kept volumes is checked for NaN/Inf here (cached
            per file), and not again on read; "header": header checks only, and each slice
            read is checked (a bad one raises DataError naming the file). Checked by the
            owner of the setting (the data module).
        format: the data format (:data:`~mri_recon.data.formats.FORMATS`); a multi-coil
            format sets the challenge itself.
        format_options: the format's own options (see its reader).
        require_target: False: files without a target are kept (self-supervised training;
            read as outside a split, ``allow_unmasked``); their items carry an empty
            ``target`` and a NaN ``max_value``.

    Attributes:
        volumes: the indexed volumes' :class:`VolumeInfo`.
        samples: (volume index, slice index) per item.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        challenge: str,
        split: str,
        acquisitions: Sequence[str] | None = None,
        sample_rate: float = 1.0,
        volume_sample_rate: float | None = None,
        seed: int = 0,
        files: Sequence[str | os.PathLike] | None = None,
        *,
        max_open_files: int = 256,
        prescan: str = "full",
        format: str = "fastmri",
        format_options: dict[str, Any] | None = None,
        require_target: bool = True,
    ) -> None:
        reader = get_reader(format, format_options)
        challenge = format_challenge(format, challenge)
        folder = reader.folder(root, challenge, split)
        volume_rate = 1.0 if volume_sample_rate is None else volume_sample_rate
        if sample_rate < 1 and volume_rate < 1:
            raise ValueError("set sample_rate (slices) or volume_sample_rate (volumes), not both")
        max_open_files = positive_int("max_open_files", max_open_files)
        paths = (
            reader.list_files(root, challenge, split)
            if files is None
            else _resolve_files(folder, files)
        )
        volumes = [
            reader.read_info(p, challenge, split)
            if require_target
            else reader.read_info(p, challenge, None, allow_unmasked=True)
            for p in paths
        ]
        if acquisitions is not None:
            wanted = {acquisitions} if isinstance(acquisitions, str) else set(acquisitions)
            found = sorted({v.acquisition for v in volumes})
            volumes = [v for v in volumes if v.acquisition in wanted]
            if not volumes:
                raise DataError(
                    folder, f"no volume has acquisition in {sorted(wanted)} (found {found})"
                )
        rng = np.random.default_rng(seed)
        volumes = [volumes[i] for i in _subsample(len(volumes), volume_rate, rng)]
        if prescan == "full":
            for info in tqdm(volumes, desc=f"prescan {folder.name}", disable=None, leave=False):
                scan_values(info)
        samples = [(v, s) for v, info in enumerate(volumes) for s in range(info.num_slices)]
        self.folder, self.challenge, self.split, self.reader = folder, challenge, split, reader
        self.volumes: list[VolumeInfo] = volumes
        self.samples: list[tuple[int, int]] = [
            samples[i] for i in _subsample(len(samples), sample_rate, rng)
        ]
        self.max_open_files, self.check_finite = int(max_open_files), prescan == "header"
        self._handles: OrderedDict[int, SliceSource] = OrderedDict()  # vol -> open source
        self._inherited: list[OrderedDict[int, SliceSource]] = []
        self._pid: int | None = None
        self._max_values: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (
            f"SliceDataset({str(self.folder)!r}, {len(self.volumes)} volumes, {len(self)} slices)"
        )

    def shape_key(self, index: int) -> tuple[tuple[int, int, int], tuple[int, int]]:
        """((C, H, W), crop_size) of item ``index``: equal keys can be batched together."""
        info = self.volumes[self.samples[index][0]]
        return (info.num_coils, *info.image_shape), info.crop_size

    def __getitem__(self, index: int) -> dict[str, Any]:
        """One slice.

        Returns:
            dict with ``kspace`` complex64 (C, H, W); ``target`` float32 (h, w) =
            ``crop_size``, or an empty tensor for test files; ``mask`` the stored bool (W,) mask or an empty bool tensor;
            ``fname``, ``slice_num``, ``max_value`` (target volume max; NaN for test files
            without attr ``max``), ``acquisition``, ``crop_size``, ``padding_left``,
            ``padding_right``, ``num_slices``.
        """
        vol, s = self.samples[range(len(self.samples))[index]]
        info = self.volumes[vol]
        source = self._file(vol)
        kspace, target = source.read(s)  # (C, H, W), uncropped target or None
        if self.check_finite:
            check_finite(info.path, "kspace", kspace[None], s)
            if target is not None:
                check_finite(info.path, info.target_key, target[None], s)
        mask = info.mask
        return {
            "kspace": torch.from_numpy(kspace),  # (C, H, W)
            # a target wider than W is cropped to (W, W), as fastMRI's UnetDataTransform does
            "target": torch.empty(0)
            if target is None
            else center_crop(torch.from_numpy(target), info.crop_size).contiguous(),
            "mask": torch.zeros(0, dtype=torch.bool) if mask is None else torch.from_numpy(mask),
            "fname": info.fname,
            "slice_num": s,
            "max_value": self._max_value(vol, source),
            "acquisition": info.acquisition,
            "crop_size": info.crop_size,
            "padding_left": info.padding_left,
            "padding_right": info.padding_right,
            "num_slices": info.num_slices,
        }

    def _max_value(self, vol: int, source: SliceSource) -> float:
        """attr ``max``; else the target volume's max (a stored target's, or the max of
        the cropped targets a format computes), once per volume and process."""
        info = self.volumes[vol]
        if info.max_value is not None:
            return info.max_value
        if info.target_key is None:
            return float("nan")
        if vol not in self._max_values:
            self._max_values[vol] = source.volume_max()
        return self._max_values[vol]

    def _file(self, vol: int) -> SliceSource:
        """The open read-only source of volume ``vol`` in this process (its datasets looked
        up once per handle, not per read)."""
        if self._pid != os.getpid():
            # Handles opened before a fork belong to the parent: keep them alive but unused,
            # as closing them here could release the parent's HDF5 file locks.
            if self._handles:
                self._inherited.append(self._handles)
            self._handles, self._pid = OrderedDict(), os.getpid()
        entry = self._handles.get(vol)
        if entry is not None:
            self._handles.move_to_end(vol)
            return entry
        info = self.volumes[vol]
        entry = self._handles[vol] = (info.reader or self.reader).open(info)
        if len(self._handles) > self.max_open_files:
            self._handles.popitem(last=False)[1].close()
        return entry

    def close(self) -> None:
        """Close the handles this process opened."""
        if self._pid == os.getpid():
            for source in self._handles.values():
                source.close()
        self._handles = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_handles=OrderedDict(), _inherited=[], _pid=None)
        return state
