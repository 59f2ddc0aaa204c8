"""Genuine fastMRI HDF5 volumes: layout, validation and loading.

Files live in ``<root>/<challenge>_<split>/*.h5`` (see ``FASTMRI_FORMAT.md``). Every reader
here opens files read-only and never writes anything next to the data (no index cache:
fastMRI's pickle cache, keyed by the root path object, silently reuses stale lists). The lazy
slice dataset of a split is :class:`mri_recon.data.slice_dataset.SliceDataset`.

Validation decisions, for genuine fastMRI data:

- ``kspace`` must be complex64 (as fastMRI ships it) or complex128 (cast to complex64 on
  load); real or two-channel k-space is rejected.
- targets may be any float dtype (cast to float32). Single-coil files also carry
  ``reconstruction_rss``; only ``TARGET_KEYS[challenge]`` is read.
- the header's encoded width may differ from the stored k-space width W: that is a warning
  (fastMRI itself uses the header's width to place the padding), but the acquired columns
  ``[padding_left, padding_right)`` must lie within ``[0, W]``.
- a file without its target is valid only as a test file: it needs a ``mask`` dataset and
  must not sit in a train or val split.
- hidden files (names starting with ``.``, e.g. macOS ``._*.h5``) are not volumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from mri_recon.data.formats.base import read_volume_samples
from mri_recon.data.h5 import DataError, check_finite, h5_reason, open_h5, read_dataset
from mri_recon.data.header import HeaderError, parse_ismrmrd_header
from mri_recon.physics.coils import CHALLENGES
from mri_recon.physics.crop import center_crop, crop_size_for
from mri_recon.physics.masks import center_band

SPLITS = ("train", "val", "test", "challenge")
TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}
KSPACE_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))
_TARGET_REQUIRED = ("train", "val")


def split_dir(root: str | os.PathLike, challenge: str, split: str) -> Path:
    """The folder ``<root>/<challenge>_<split>`` of one split (it need not exist)."""
    if challenge not in CHALLENGES or split not in SPLITS:
        name, value, options = (
            ("challenge", challenge, CHALLENGES)
            if challenge not in CHALLENGES
            else ("split", split, SPLITS)
        )
        raise DataError(root, f"unknown {name} {value!r}, expected one of {options}")
    return Path(root) / f"{challenge}_{split}"


def parse_split_dir(path: str | os.PathLike) -> tuple[str, str] | None:
    """(challenge, split) from a folder named ``<challenge>_<split>``, else None."""
    challenge, _, split = Path(path).name.partition("_")
    return (challenge, split) if challenge in CHALLENGES and split in SPLITS else None


def list_volumes(
    root: str | os.PathLike, challenge: str, split: str, reader: Any = None
) -> list[Path]:
    """The sorted ``*.h5`` volumes of a split; DataError if the folder is missing or empty.
    ``reader``: the :mod:`~mri_recon.data.formats` reader of the data (None: fastMRI)."""
    if reader is not None and reader.name != "fastmri":
        return reader.list_files(root, challenge, split)
    folder = split_dir(root, challenge, split)
    files = sorted(p for p in folder.glob("*.h5") if not p.name.startswith("."))
    for p in files:
        if p.is_symlink() and not p.exists():
            raise DataError(p, f"dangling symlink (to {os.readlink(p)})")
    files = [p for p in files if p.is_file()]
    if not files:  # no volume to list: say whether the folder is there at all
        raise DataError(
            folder,
            "no .h5 files in this directory"
            if folder.is_dir()
            else f"no such directory (expected {challenge}_{split}/ under root)",
        )
    return files


@dataclass(frozen=True, eq=False)
class VolumeInfo:
    """What a volume holds, read from its header, attrs and dataset shapes (no k-space read).

    Attributes:
        path, fname: the file and its name with ``.h5`` (fastMRI's ``fname``).
        challenge: "singlecoil" or "multicoil".
        num_slices, num_coils: S, and C (1 for single-coil).
        kspace_shape: as stored, (S, H, W) or (S, C, H, W).
        target_key, target_shape: the target dataset and its (h, w), or None (test file).
        crop_size: (h, w) = ``crop_size_for(W, target_shape or recon_size[:2])``.
        encoded_size, recon_size: header ``encodedSpace``/``reconSpace`` matrix sizes (x, y, z).
        padding_left, padding_right: acquired columns ``[padding_left, padding_right)``.
        acquisition, patient_id: attrs ("" if absent).
        max_value, norm: attrs ``max``, ``norm`` (None if absent).
        is_test: no target (the k-space is already undersampled by ``mask``).
        mask: stored bool (W,) column mask, or None.
        num_low_frequencies: attr ``num_low_frequency``, else the center band of ``mask``.
        acceleration: attr ``acceleration`` or None.
        attrs: all file attrs as Python values.
        warnings: non-fatal findings, one line each.
        recon_fov_mm: header ``reconSpace/fieldOfView_mm`` (x, y, z), or None if absent.
        reader: the :mod:`~mri_recon.data.formats` reader of another format that reads its
            samples (None: a fastMRI file, read here).
    """

    path: Path
    fname: str
    challenge: str
    num_slices: int
    num_coils: int
    kspace_shape: tuple[int, ...]
    target_key: str | None
    target_shape: tuple[int, int] | None
    crop_size: tuple[int, int]
    encoded_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    padding_left: int
    padding_right: int
    acquisition: str
    max_value: float | None
    norm: float | None
    patient_id: str
    is_test: bool
    mask: np.ndarray | None
    num_low_frequencies: int | None
    acceleration: float | None
    attrs: dict[str, Any]
    warnings: tuple[str, ...] = ()
    recon_fov_mm: tuple[float, float, float] | None = None
    reader: Any = None

    @property
    def format(self) -> str:
        """The ``data.format`` of the file."""
        return "fastmri" if self.reader is None else self.reader.name

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the k-space and of the full image."""
        return (self.kspace_shape[-2], self.kspace_shape[-1])

    @property
    def voxel_size_mm(self) -> tuple[float, float, float] | None:
        """(x, y, z) = reconSpace field of view / matrix size: rows (readout), columns
        (phase encode) and slice thickness in mm; None without a field of view."""
        if self.recon_fov_mm is None:
            return None
        return tuple(f / n for f, n in zip(self.recon_fov_mm, self.recon_size, strict=True))


def _dataset(hf: h5py.File, key: str, problems: list[str]) -> h5py.Dataset | None:
    """``hf[key]`` if it is a dataset; None if absent or (a problem) not a dataset."""
    obj = hf.get(key)
    if obj is not None and not isinstance(obj, h5py.Dataset):
        problems.append(f"{key} is a {type(obj).__name__}, expected a dataset")
        return None
    return obj


def _kspace_layout(hf: h5py.File, challenge: str | None, problems: list[str]) -> tuple[str, tuple]:
    """(challenge, stored shape) of the k-space; what is wrong with it goes to ``problems``."""
    ks = _dataset(hf, "kspace", problems)
    if ks is None:
        if not problems:
            problems.append(f"no 'kspace' dataset (keys: {sorted(map(str, hf))})")
        return "", ()
    shape = tuple(int(n) for n in ks.shape)
    found = "singlecoil" if len(shape) == 3 else "multicoil"
    if len(shape) not in (3, 4):
        problems.append(
            f"kspace has {len(shape)} dims {shape}, expected 3 (singlecoil) "
            "(S, H, W), 4 (multicoil) (S, C, H, W) or 5 (prostate) (A, S, C, H, W)"
        )
    elif challenge is not None and challenge != found:
        problems.append(f"kspace shape {shape} is {found}, but the challenge is {challenge}")
    if ks.dtype not in KSPACE_DTYPES:
        problems.append(f"kspace dtype is {ks.dtype}, expected complex64 (or complex128)")
    if min(shape, default=0) < 1:
        problems.append(f"kspace shape {shape} has an empty axis")
    return found, shape


def _target_layout(
    hf: h5py.File,
    challenge: str,
    kshape: tuple,
    split: str | None,
    problems: list[str],
    allow_unmasked: bool = False,
    require_target: bool = True,
) -> tuple[str | None, tuple[int, int] | None]:
    """(target key, (h, w)), or (None, None) for a test file (or, ``allow_unmasked``, any
    file without a target; or, not ``require_target``, a train/val file without one)."""
    key = TARGET_KEYS[challenge]
    target = _dataset(hf, key, problems)
    if target is None:
        if split in _TARGET_REQUIRED and not require_target:
            return None, None
        if split in _TARGET_REQUIRED:
            problems.append(f"no target '{key}' (required in the {split} split)")
        elif "mask" not in hf and not allow_unmasked:
            problems.append(
                f"neither a target '{key}' nor a 'mask' dataset (a file "
                "without target must be a test file carrying its mask)"
            )
        return None, None
    if target.ndim != 3:
        problems.append(f"{key} has shape {target.shape}, expected 3 dims (S, h, w)")
        return None, None
    if target.dtype.kind != "f":
        problems.append(f"{key} dtype is {target.dtype}, expected float32")
    if target.shape[0] != kshape[0]:
        problems.append(f"{key} has {target.shape[0]} slices but kspace has {kshape[0]}")
    return key, (int(target.shape[1]), int(target.shape[2]))


def _read_mask(hf: h5py.File, width: int, problems: list[str]) -> np.ndarray | None:
    ds = _dataset(hf, "mask", problems)
    if ds is None:
        return None
    if ds.ndim != 1 or ds.shape[0] != width:
        problems.append(f"mask has shape {ds.shape}, expected ({width},) = kspace width")
        return None
    values = ds[()]
    if ds.dtype.kind not in "biuf":
        problems.append(f"mask dtype is {ds.dtype}, expected bool or 0/1 numbers")
    elif not np.isin(values, (0, 1)).all():
        problems.append(f"mask has values other than 0 and 1: {np.unique(values)[:5]}")
    elif not values.any():
        problems.append("mask samples no column")
    return values.astype(np.bool_)


def _py(value: Any) -> Any:
    """An HDF5 attribute as a Python value: bytes -> str, numpy scalars -> int/float/str."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value.item() if isinstance(value, np.generic) else value


def _number(attrs: dict, key: str, problems: list[str], positive: bool = False) -> float | None:
    value = attrs.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        problems.append(f"attr '{key}' = {value!r} is not a finite number")
    elif value < 0 or (positive and value == 0):
        problems.append(f"attr '{key}' = {value!r} must be {'> 0' if positive else '>= 0'}")
    else:
        return float(value)
    return None


def _read_header(
    hf: h5py.File, kshape: tuple, problems: list[str], warnings: list[str]
) -> Any | None:
    """The parsed ``ismrmrd_header``, or None (a problem) if it is missing or bad."""
    ds = _dataset(hf, "ismrmrd_header", problems)
    raw = None if ds is None else _py(ds[()])
    if isinstance(raw, np.ndarray) and raw.dtype in (np.uint8, np.int8) and raw.ndim == 1:
        raw = raw.tobytes()  # XML stored as a byte array by some writers
    if ds is None or not isinstance(raw, (str, bytes)):
        what = "no 'ismrmrd_header' dataset" if ds is None else type(raw).__name__
        problems.append(what if ds is None else f"ismrmrd_header holds {what}, expected XML bytes")
        return None
    try:
        hdr = parse_ismrmrd_header(raw)
    except HeaderError as err:
        problems.append(str(err))
        return None
    width = kshape[-1]
    if hdr.encoded_size[1] != width:
        warnings.append(
            f"ismrmrd_header encoded y = {hdr.encoded_size[1]} differs from the "
            f"kspace width W = {width}"
        )
    if not 0 <= hdr.padding_left < hdr.padding_right <= width:
        problems.append(
            f"ismrmrd_header acquired columns [{hdr.padding_left}, "
            f"{hdr.padding_right}) are outside the kspace width [0, {width}]"
        )
    return hdr


def _crop(
    kshape: tuple,
    target_key: str | None,
    target_shape: tuple[int, int] | None,
    recon_size: tuple,
    problems: list[str],
) -> tuple[int, int]:
    size = target_shape or (recon_size[0], recon_size[1])
    crop = crop_size_for(kshape[-1], size)
    what = f"target {target_key} {size}" if target_key else f"ismrmrd_header recon size {size}"
    if target_shape is not None and target_shape[0] > kshape[-2]:
        # fastMRI crops a target wider than W to (W, W), but one taller than H cannot be a
        # crop of this k-space's image: a mismatched target
        problems.append(f"{what} is taller than the kspace image (H, W) = {kshape[-2:]}")
    elif min(crop) < 1 or crop[0] > min(kshape[-2], size[0]) or crop[1] > min(kshape[-1], size[1]):
        problems.append(
            f"{what} does not fit the kspace image (H, W) = {kshape[-2:]} (crop {crop})"
        )
    return crop


def _has_averages(hf: h5py.File) -> bool:
    """``kspace`` with a leading averages axis (5 dims): a fastMRI prostate file."""
    ks = hf.get("kspace")
    return isinstance(ks, h5py.Dataset) and ks.ndim == 5


def _read_layout(
    hf: h5py.File,
    challenge: str | None,
    split: str | None,
    problems: list[str],
    allow_unmasked: bool = False,
    require_target: bool = True,
) -> dict[str, Any]:
    """Everything :class:`VolumeInfo` holds of an open file (``problems`` empty), else the
    file's problems in ``problems``."""
    challenge, kshape = _kspace_layout(hf, challenge, problems)
    if problems:
        return {}
    warnings: list[str] = []
    target_key, target_shape = _target_layout(
        hf, challenge, kshape, split, problems, allow_unmasked, require_target
    )
    mask = _read_mask(hf, kshape[-1], problems)
    hdr = _read_header(hf, kshape, problems, warnings)
    attrs = {str(k): _py(v) for k, v in hf.attrs.items()}
    numbers = {
        field: _number(attrs, key, problems, positive=key == "acceleration")
        for field, key in (
            ("num_low_frequencies", "num_low_frequency"),
            ("max_value", "max"),
            ("norm", "norm"),
            ("acceleration", "acceleration"),
        )
    }
    if hdr is None or problems:
        return {}
    crop = _crop(kshape, target_key, target_shape, hdr.recon_size, problems)
    num_low = numbers.pop("num_low_frequencies")
    if num_low is None and mask is not None:
        start, stop = center_band(torch.from_numpy(mask))
        num_low = stop - start
    if target_key is not None and "max" not in attrs:
        warnings.append("no attr 'max': max_value is computed from the target")
    return dict(
        challenge=challenge,
        num_slices=kshape[0],
        num_coils=kshape[1] if len(kshape) == 4 else 1,
        kspace_shape=kshape,
        target_key=target_key,
        target_shape=target_shape,
        crop_size=crop,
        encoded_size=hdr.encoded_size,
        recon_size=hdr.recon_size,
        padding_left=hdr.padding_left,
        padding_right=hdr.padding_right,
        acquisition=str(attrs.get("acquisition", "")),
        patient_id=str(attrs.get("patient_id", "")),
        is_test=target_key is None,
        mask=mask,
        num_low_frequencies=None if num_low is None else int(num_low),
        attrs=attrs,
        warnings=tuple(warnings),
        recon_fov_mm=hdr.recon_fov_mm,
        **numbers,
    )


def read_volume_info(
    path: str | os.PathLike,
    challenge: str | None = None,
    split: str | None = None,
    allow_unmasked: bool = False,
    require_target: bool = True,
    reader: Any = None,
) -> VolumeInfo:
    """Validate a volume's layout, header and attrs and describe it, without reading k-space.

    Args:
        path: the ``.h5`` file.
        challenge: "singlecoil"/"multicoil" to enforce, or None to infer from the k-space rank.
        split: the split the file belongs to; in "train"/"val" a target is required.
        allow_unmasked: a file with neither a target nor a ``mask`` is valid (``mri-recon-predict``:
            fully sampled, or undersampled with its mask in its zero columns,
            :func:`sampled_columns`); otherwise it must be a test file carrying its mask.
        require_target: False: a train/val file without target is valid (self-supervised
            training, ``training=ssdu``; its ``mask``, if stored, is its acquisition).
        reader: the :mod:`~mri_recon.data.formats` reader of the data (None: fastMRI with
            its default options; a prostate T2 file's samples are read by its reader).

    Raises:
        DataError: one line naming the file and every offending key (``; ``-separated).
    """
    if reader is not None and reader.name != "fastmri":
        return reader.read_info(path, challenge, split, allow_unmasked)
    path, problems = Path(path), []
    try:
        with open_h5(path) as hf:
            if _has_averages(hf):  # fastMRI prostate T2 (mri_recon.data.formats.prostate)
                from mri_recon.data.formats import get_reader

                fields = (reader or get_reader()).averaged_layout(
                    hf, challenge, split, problems, allow_unmasked
                )
            else:
                fields = _read_layout(
                    hf, challenge, split, problems, allow_unmasked, require_target
                )
    except (OSError, RuntimeError, KeyError) as err:  # h5py on damaged metadata
        problems = [f"corrupt HDF5 file ({h5_reason(err)})"]
    if problems:
        raise DataError(path, "; ".join(problems))
    return VolumeInfo(path=path, fname=path.name, **fields)


def check_values(info: VolumeInfo) -> None:
    """Read every slice of k-space and target, one at a time; DataError at the first NaN/Inf."""
    if info.reader is not None:
        source = info.reader.open(info)
        try:
            for s in range(info.num_slices):
                kspace, target = source.read(s)
                check_finite(info.path, "kspace", kspace[None], s)
                if target is not None:
                    check_finite(info.path, info.target_key, target[None], s)
        finally:
            source.close()
        return
    with open_h5(info.path) as hf:
        for key in ("kspace", info.target_key):
            if key is None:
                continue
            for s in range(info.num_slices):
                check_finite(info.path, key, read_dataset(hf[key], info.path, s)[None], s)


def check_volume(
    path: str | os.PathLike,
    challenge: str | None = None,
    split: str | None = None,
    reader: Any = None,
) -> VolumeInfo:
    """:func:`read_volume_info` plus :func:`check_values` (uncached; see ``data.prescan``)."""
    info = read_volume_info(path, challenge, split, reader=reader)
    check_values(info)
    return info


@dataclass
class Volume:
    """A whole volume in memory.

    Attributes:
        info: its :class:`VolumeInfo`.
        kspace: complex64 (S, C, H, W); C = 1 for single-coil.
        target: float32 (S, h, w) = (S, *info.crop_size), or None for test files.
        mask: the stored bool (W,) column mask, or None.
    """

    info: VolumeInfo
    kspace: torch.Tensor
    target: torch.Tensor | None = None
    mask: torch.Tensor | None = None


def load_volume(info: VolumeInfo, check_values: bool = True) -> Volume:
    """Read a whole volume described by ``info`` (from :func:`read_volume_info` or the
    prescan: its header is not read again).

    Args:
        info: the volume's validated description.
        check_values: k-space and target must be finite (callers whose files passed
            ``prescan="full"`` skip this second full pass).
    """
    if info.reader is not None:
        kspace, target = read_volume_samples(info, check=check_values)
        check_values = False
    else:
        with open_h5(info.path) as hf:
            kspace = read_dataset(hf["kspace"], info.path).astype(np.complex64, copy=False)
            target = None
            if info.target_key is not None:
                target = read_dataset(hf[info.target_key], info.path).astype(np.float32, copy=False)
    if check_values:
        check_finite(info.path, "kspace", kspace)
        if target is not None:
            check_finite(info.path, info.target_key, target)
    if kspace.ndim == 3:
        kspace = kspace[:, None]  # (S, 1, H, W)
    return Volume(
        info=info,
        kspace=torch.from_numpy(np.ascontiguousarray(kspace)),
        # a target wider than W is cropped to (W, W), as fastMRI's UnetDataTransform does
        target=None
        if target is None
        else center_crop(torch.from_numpy(target), info.crop_size).contiguous(),
        mask=None if info.mask is None else torch.from_numpy(info.mask.copy()),
    )


def sampled_columns(kspace: torch.Tensor, info: VolumeInfo) -> tuple[torch.Tensor, str]:
    """The column mask of already undersampled k-space without a stored ``mask``, read from
    its all-zero columns inside the header's encoded limits.

    Columns outside ``[padding_left, padding_right)`` are zero because the scanner padded
    the encoded matrix, not because a sample is missing: they count as sampled (known
    zeros, as in the fully sampled k-space fastMRI's targets come from).

    Args:
        kspace: complex (S, C, H, W), the whole volume.
        info: its description (the encoded limits).

    Returns:
        (bool (W,) mask, a one-line note for the log naming the limits and the counts).
    """
    left, right = info.padding_left, info.padding_right
    mask = (kspace != 0).flatten(0, -2).any(dim=0)  # (W,): a nonzero sample in the column
    mask[:left] = True
    mask[right:] = True
    inside = int(mask[left:right].sum())
    padded = mask.shape[0] - (right - left)
    note = (
        f"mask read from the all-zero k-space columns inside the encoded limits [{left}, "
        f"{right}): {inside} of {right - left} sampled; the {padded} zero-padded columns "
        "outside them are not missing samples"
    )
    return mask, note
