"""Which volumes an evaluation runs on, and the column mask of each.

All selected files are validated (layout, header, attrs and, with ``prescan="full"``, every
slice for NaN/Inf: :func:`mri_recon.data.prescan.scan_volume`, the verdict of
``mri-recon-data check`` and of training) before anything is reconstructed, so a bad file
fails the run before any work is done, or, when bad files are to be skipped, is listed with
its reason.

Masks follow fastMRI's evaluation convention: a file that carries a ``mask`` dataset (test
and challenge files: its k-space is already undersampled) is evaluated with that mask, never
a new one; any other file gets ``ColumnMaskFunc(...)(W, seed=file_seed(fname))``, the same
mask for all its slices, as fastMRI's ``UnetDataTransform`` with ``use_seed=True`` draws it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mri_recon.data.fastmri import (
    DataError,
    VolumeInfo,
    list_volumes,
    read_volume_info,
    sampled_columns,
)
from mri_recon.data.prescan import scan_volume
from mri_recon.physics.masks import (
    ColumnMaskFunc,
    center_band,
    file_seed,
    mask_columns,
    seed_label,
)


@dataclass(frozen=True)
class SkippedFile:
    """A file left out of a run (``data.skip_bad_files=true``).

    Attributes:
        fname: the file name.
        reason: the one-line DataError message.
        path: the file, where it does not lie in the run's split folder (prediction inputs).
    """

    fname: str
    reason: str
    path: Path | None = None


@dataclass(frozen=True)
class VolumeMask:
    """The column mask a volume is evaluated with.

    Attributes:
        mask: bool (W,), True where a column is sampled.
        acceleration: R of the drawn mask, or of the stored one (attr ``acceleration``,
            else W / number of sampled columns).
        center_fraction: fraction of fully sampled center columns (stored masks:
            ``num_low_frequencies / W``).
        source: "drawn" (per-file seed), "stored" (the file's ``mask`` dataset) or "read"
            (the all-zero columns of undersampled k-space without a stored mask).
        num_low_frequencies: fully sampled centre columns (stored masks: attr
            ``num_low_frequency``, else the centre band).
        mask_type: the mask function's type, or "stored".
        seed: the seed as :func:`~mri_recon.physics.masks.seed_label` writes it (the file
            name for a per-file seed), "" for a stored mask.
        note: what a log should say about this mask ("" if nothing; a mask read from
            zero columns says which columns count).
    """

    mask: torch.Tensor
    acceleration: float
    center_fraction: float
    source: str
    num_low_frequencies: int = 0
    mask_type: str = "stored"
    seed: str = ""
    note: str = ""

    def columns(self) -> dict[str, str | int]:
        """The :data:`~mri_recon.physics.masks.MASK_COLUMNS` of ``per_volume.csv``."""
        return mask_columns(self.mask, self.mask_type, self.seed, self.num_low_frequencies)


def select_volumes(
    root: str | os.PathLike,
    challenge: str,
    split: str,
    *,
    max_volumes: int | None = None,
    skip_bad_files: bool = False,
    prescan: str = "full",
    acquisitions: Sequence[str] | None = None,
    reader: Any = None,
) -> tuple[list[VolumeInfo], list[SkippedFile]]:
    """Validate the volumes of ``<root>/<challenge>_<split>`` (sorted by name).

    Args:
        root: data root.
        challenge: "singlecoil" or "multicoil".
        split: "train", "val", "test" or "challenge".
        max_volumes: keep the first ``max_volumes`` (>= 1, checked by the caller) valid
            volumes (None: all).
        skip_bad_files: list bad files as skipped instead of raising.
        prescan: "full" (every slice checked for NaN/Inf, cached) or "header".
        acquisitions: keep only volumes whose ``acquisition`` attribute is one of these
            (other volumes are not selected, nor counted in ``max_volumes``); None: all.
        reader: the data format's reader (:mod:`mri_recon.data.formats`); None: fastMRI.

    Returns:
        (infos of the volumes to evaluate, skipped files).

    Raises:
        DataError: the split folder is missing/empty, a file is bad (unless skipped), or no
            valid volume is left.
    """
    paths = list_volumes(root, challenge, split, reader)
    infos: list[VolumeInfo] = []
    skipped: list[SkippedFile] = []
    found: set[str] = set()
    for path in paths:
        if max_volumes is not None and len(infos) >= max_volumes:
            break
        try:
            info = scan_volume(path, challenge, split, prescan, reader=reader)
        except DataError as err:
            if not skip_bad_files:
                raise
            skipped.append(SkippedFile(path.name, str(err)))
            continue
        found.add(info.acquisition)
        if acquisitions is None or info.acquisition in acquisitions:
            infos.append(info)
    if not infos and found and acquisitions is not None:
        raise DataError(
            Path(paths[0]).parent,
            f"no volume with acquisition in {list(acquisitions)} (found: {sorted(found)})",
        )
    if not infos:
        raise DataError(Path(paths[0]).parent, f"no valid volume ({len(skipped)} bad files)")
    return infos, skipped


def volume_mask(
    info: VolumeInfo, mask_func: ColumnMaskFunc | None, kspace: torch.Tensor | None = None
) -> VolumeMask:
    """The evaluation mask of one volume: its stored mask; else, for a file without a target
    whose ``kspace`` (complex (S, C, H, W)) has all-zero columns inside the encoded limits
    (already undersampled), the mask read from them (:func:`sampled_columns`; ``mask_func``
    is not applied on top); else the one ``mask_func`` draws from the file name
    (``mask_func`` may be None only if no file needs one)."""
    width = info.image_shape[1]
    if info.mask is not None:
        mask = torch.from_numpy(info.mask.copy())
        acceleration = info.acceleration or width / int(mask.sum())
        num_low = info.num_low_frequencies or 0
        return VolumeMask(mask, float(acceleration), num_low / width, "stored", num_low)
    if info.target_key is None and kspace is not None:
        mask, note = sampled_columns(kspace, info)
        acquired = info.padding_right - info.padding_left
        num_sampled = int(mask[info.padding_left : info.padding_right].sum())
        if num_sampled < acquired:
            start, stop = center_band(mask)
            return VolumeMask(
                mask, acquired / max(num_sampled, 1), (stop - start) / width, "read",
                stop - start, "read", note=note,
            )  # fmt: skip
    if mask_func is None:
        raise DataError(
            info.path,
            "has no stored 'mask' and no mask function was given"
            + (" (its k-space is fully sampled: set mask=...)" if kspace is not None else ""),
        )
    seed = file_seed(info.fname)
    s = mask_func(width, seed=seed)
    return VolumeMask(
        s.mask,
        s.acceleration,
        s.center_fraction,
        "drawn",
        s.num_low_frequencies,
        mask_func.mask_type,
        seed_label(seed),
    )


def check_shapes(
    methods: Sequence[Any], root: Any, challenge: str, split: str, reader: Any = None
) -> None:
    """Each method's ``check_shape((H, W))`` (where it has one: ``wavelet``'s levels) on the
    k-space of every volume of the split, read from the headers (no k-space read), so that a
    setting the data cannot take ends in one line before anything is written: DataError naming
    the file. Files that cannot be read are left to the run's own checks."""
    checks = [m.check_shape for m in methods if hasattr(m, "check_shape")]
    if not checks:
        return
    for path in list_volumes(root, challenge, split, reader):
        try:
            shape = tuple(read_volume_info(path, challenge, split, reader=reader).kspace_shape)
        except DataError:
            continue
        for check in checks:
            try:
                check(shape[-2:])
            except ValueError as err:
                raise DataError(path, str(err)) from None
