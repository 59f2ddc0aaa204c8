"""fastMRI (knee, brain, prostate T2): the reader over :mod:`mri_recon.data.fastmri`, the
layout ``FASTMRI_FORMAT.md`` describes; prostate T2 files (a leading averages axis) are read
as :mod:`mri_recon.data.formats.prostate` says, option ``averages`` how."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mri_recon.data.fastmri import list_volumes, parse_split_dir, read_volume_info, split_dir
from mri_recon.data.formats import prostate
from mri_recon.data.formats.base import FormatReader, SliceSource
from mri_recon.data.h5 import read_dataset


class Source(SliceSource):
    """A fastMRI file: slice ``s`` of ``kspace`` and of the target read straight into
    complex64/float32 (HDF5 converts complex128/float64 on the fly)."""

    def __init__(self, info: Any) -> None:
        super().__init__(info)
        self.kspace = self.hf["kspace"]
        self.target = None if info.target_key is None else self.hf[info.target_key]

    def read(self, s: int) -> tuple[np.ndarray, np.ndarray | None]:
        path = self.info.path
        kspace = read_dataset(
            self.kspace, path, s, out=np.empty(self.kspace.shape[1:], np.complex64)
        )
        target = None
        if self.target is not None:
            target = read_dataset(
                self.target, path, s, out=np.empty(self.target.shape[1:], np.float32)
            )
        return (kspace[None] if kspace.ndim == 2 else kspace), target

    def volume_max(self) -> float:
        """The stored target volume's max (fastMRI's attr ``max`` when it is absent)."""
        return float(np.max(read_dataset(self.target, self.info.path)))


class Reader(FormatReader):
    """``<root>/<challenge>_<split>/*.h5``; see :mod:`mri_recon.data.fastmri`. Option
    ``averages`` (prostate T2 files only): ``combine`` (default) or an average's index."""

    name = "fastmri"
    split_folders = {s: s for s in ("train", "val", "test", "challenge")}
    OPTIONS = {"averages": "combine"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        value = self.options["averages"]
        if value != "combine" and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise ValueError(
                "format_options.averages: must be 'combine' or an average's index >= 0, "
                f"got {value!r}"
            )

    def folder(self, root: str | os.PathLike, challenge: str, split: str) -> Path:
        return split_dir(root, challenge, split)

    def split_of(self, path: Path) -> tuple[str | None, str | None]:
        return parse_split_dir(path.parent) or (None, None)

    def list_files(self, root: str | os.PathLike, challenge: str, split: str) -> list[Path]:
        return list_volumes(root, challenge, split)

    def read_info(
        self,
        path: str | os.PathLike,
        challenge: str | None = None,
        split: str | None = None,
        allow_unmasked: bool = False,
    ) -> Any:
        return read_volume_info(path, challenge, split, allow_unmasked, reader=self)

    def open(self, info: Any) -> Source:
        return Source(info)

    def averaged_layout(
        self,
        hf: Any,
        challenge: str | None,
        split: str | None,
        problems: list[str],
        allow_unmasked: bool,
    ) -> dict[str, Any]:
        """The VolumeInfo fields of an open prostate T2 file (:mod:`.prostate`), its samples
        read by an :class:`AveragedReader` of these options; problems go to ``problems``."""
        average = self.options["averages"]
        fields = prostate.read_layout(hf, challenge, split, problems, allow_unmasked, average)
        return {**fields, "reader": AveragedReader(**self.options)} if fields else fields

    def synth(self, out: Path, preset: str, seed: int) -> list[Path]:
        from mri_recon.data.synthetic import generate_dataset

        generate_dataset(out, preset, "both", seed, progress=False)
        return sorted(out.rglob("*.h5"))


class AveragedReader(Reader):
    """The ``fastmri`` reader of a prostate T2 file: :class:`.prostate.Source` reads it."""

    def open(self, info: Any) -> prostate.Source:
        return prostate.Source(info)
