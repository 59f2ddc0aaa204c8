"""What every data format provides: its folders, one file's description, one sample's read.

A format's reader turns its files into this project's samples, so every model, baseline and
metric works unchanged: per sample, centred k-space complex64 (C, H, W) (our ``fft2c``
convention: DC in the middle, orthonormal), the target float32 (before the centre crop to
``VolumeInfo.crop_size``), the volume's stored column mask or none, and the geometry a
fastMRI header would give (``encoded_size``, ``recon_size``, acquired columns).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from mri_recon.data.h5 import DataError, check_finite, open_h5
from mri_recon.physics.crop import center_crop

SPLITS = ("train", "val", "test", "challenge")


class SliceSource:
    """One open file of a format; :meth:`read` gives sample ``s``.

    Args:
        info: the file's :class:`~mri_recon.data.fastmri.VolumeInfo`.
    """

    def __init__(self, info: Any) -> None:
        self.info = info
        self.hf: h5py.File = open_h5(info.path)

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(k-space complex64 (C, H, W), target float32 (h', w') uncropped, or None)."""
        raise NotImplementedError

    def volume_max(self) -> float:
        """The target volume's max: of every sample's target cropped to ``crop_size`` (a
        format with a stored target may read it instead)."""
        crop = self.info.crop_size
        return max(
            float(center_crop(torch.from_numpy(self.read(s)[1]), crop).max())
            for s in range(self.info.num_slices)
        )

    def close(self) -> None:
        self.hf.close()


class FormatReader:
    """One data format (subclasses set the class attributes and the methods below).

    Args:
        options: the format's own options (:attr:`OPTIONS` names them and their defaults);
            checked here, an unknown one is ``ValueError("format_options: ...")``.

    Attributes:
        name: the ``data.format`` value.
        challenge: the challenge its data always are (``multicoil``), or None (either).
        suffix: the file name suffix of its volumes.
        split_folders: split -> folder under the data root.
    """

    name = ""
    challenge: str | None = None
    suffix = ".h5"
    split_folders: dict[str, str] = {}
    OPTIONS: dict[str, Any] = {}

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ValueError(
                f"format_options: {unknown} not options of format {self.name} "
                f"(its options: {sorted(self.OPTIONS) or 'none'})"
            )
        self.options = {**self.OPTIONS, **options}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.tag()})"

    def tag(self) -> str:
        """The format and its options, for the prescan cache key."""
        return f"{self.name}:{sorted(self.options.items())}"

    def folder(self, root: str | os.PathLike, challenge: str, split: str) -> Path:
        """The folder of ``split`` under ``root`` (it need not exist)."""
        if split not in self.split_folders:
            raise DataError(
                root, f"format {self.name} has no split {split!r} ({sorted(self.split_folders)})"
            )
        return Path(root) / self.split_folders[split]

    def split_of(self, path: Path) -> tuple[str | None, str | None]:
        """(challenge, split) of a file from the folder it lies in (or, for layouts with a
        folder per subject, the one above), (challenge, None) if neither is a split folder."""
        for parent in (path.parent, path.parent.parent):
            for split, folder in self.split_folders.items():
                if f"/{parent.as_posix()}".endswith(f"/{folder}"):
                    return self.challenge, split
        return self.challenge, None

    def is_volume(self, path: Path) -> bool:
        """A file of this format (by name: hidden files are not)."""
        return path.name.endswith(self.suffix) and not path.name.startswith(".")

    def find(self, folder: Path) -> list[Path]:
        """The volumes directly in a split folder, sorted (override for nested layouts)."""
        return sorted(p for p in folder.glob(f"*{self.suffix}") if self.is_volume(p))

    def list_files(self, root: str | os.PathLike, challenge: str, split: str) -> list[Path]:
        """The sorted volumes of a split; DataError if its folder is missing or empty."""
        folder = self.folder(root, challenge, split)
        files = [p for p in self.find(folder) if p.is_file()]
        if not files:
            raise DataError(
                folder,
                f"no {self.suffix} files of format {self.name} in this directory"
                if folder.is_dir()
                else f"no such directory (expected {self.split_folders[split]}/ under root "
                f"for format {self.name})",
            )
        return files

    def companions(self, path: Path) -> list[Path]:
        """Other files a volume's samples are read from (their changes void a cached scan)."""
        return []

    def read_info(
        self,
        path: str | os.PathLike,
        challenge: str | None = None,
        split: str | None = None,
        allow_unmasked: bool = False,
    ) -> Any:
        """Validate a file and describe it as a VolumeInfo (DataError: one line naming the
        file and each offending key or axis)."""
        raise NotImplementedError

    def open(self, info: Any) -> SliceSource:
        raise NotImplementedError

    def synth(self, out: Path, preset: str, seed: int) -> list[Path]:
        """Write tiny files of this layout under ``out`` (train and val splits)."""
        raise NotImplementedError


def dataset_problem(hf: h5py.File, key: str, ndim: int, kinds: str, what: str) -> str | None:
    """Why ``hf[key]`` is not a ``ndim``-dim dataset of a dtype kind in ``kinds``, else None."""
    obj = hf.get(key)
    if obj is None:
        return f"no '{key}' dataset (keys: {sorted(map(str, hf))})"
    if not isinstance(obj, h5py.Dataset):
        return f"{key} is a {type(obj).__name__}, expected a dataset"
    if obj.ndim != ndim:
        return f"{key} has {obj.ndim} dims {obj.shape}, expected {ndim} {what}"
    if obj.dtype.kind not in kinds:
        return f"{key} dtype is {obj.dtype}, expected {what}"
    if min(obj.shape) < 1:
        return f"{key} shape {obj.shape} has an empty axis"
    return None


def read_volume_samples(info: Any, check: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Every sample of a volume: k-space complex64 (S, C, H, W) and target float32
    (S, h', w') uncropped, or None; with ``check`` each sample must be finite."""
    source = info.reader.open(info)
    try:
        reads = [source.read(s) for s in range(info.num_slices)]
    finally:
        source.close()
    kspace = np.stack([k for k, _ in reads])
    target = None if reads[0][1] is None else np.stack([t for _, t in reads])
    if check:
        check_finite(info.path, "kspace", kspace)
        if target is not None:
            check_finite(info.path, info.target_key, target)
    return kspace, target
