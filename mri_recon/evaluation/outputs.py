"""Atomic writers for the evaluation's outputs, and a staging area that publishes a run's
outputs all at once.

Every file is written to a temporary name in its destination folder and renamed into place
(``os.replace`` is atomic on POSIX within one file system), so a reader never sees a
half-written file. A run writes into a :class:`Staging` directory inside the run directory
and publishes (renames) everything only when the whole run has succeeded; on failure the
staging directory is removed, so a failed run leaves no partial outputs.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

from mri_recon.fileio import atomic_path, write_atomic


def _json_ready(value: Any) -> Any:
    """NaN/Inf -> None (strict JSON), numpy scalars/arrays and paths -> Python values."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict, indented JSON (NaN -> null) atomically; returns ``path``."""
    text = json.dumps(_json_ready(obj), indent=2, allow_nan=False)
    return write_atomic(path, text + "\n")


def write_reconstruction(path: str | os.PathLike, reconstruction: np.ndarray) -> Path:
    """Write a fastMRI submission file: dataset ``reconstruction``, float32 (S, h, w).

    Args:
        path: destination ``<fname>.h5``.
        reconstruction: float (S, h, w); stored as float32.

    Returns:
        ``path``.
    """
    recon = np.asarray(reconstruction)
    if recon.ndim != 3 or not np.issubdtype(recon.dtype, np.floating):
        raise ValueError(
            f"{Path(path).name}: reconstruction must be float (S, h, w), got "
            f"{recon.dtype} {recon.shape}"
        )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as hf:
        hf.create_dataset("reconstruction", data=recon.astype(np.float32, copy=False))
    return Path(path)


def write_nifti(
    path: str | os.PathLike, reconstruction: np.ndarray, voxel_size: Sequence[float]
) -> Path:
    """Write a volume as gzipped NIfTI-1 (``.nii.gz``) for image viewers, atomically.

    The array axes are (i, j, k) = (column, row counted from the bottom, slice), so a viewer
    (i to the right, j up) shows each slice as ``matplotlib.pyplot.imshow`` does; the affine
    is diagonal with the voxel size in mm, so the aspect ratio is right.

    Args:
        path: destination ``<fname>.nii.gz``.
        reconstruction: float (S, h, w).
        voxel_size: (row, column, slice) sizes in mm: the ismrmrd header's reconSpace
            field of view (x, y, z) / matrix size.

    Returns:
        ``path``.
    """
    import nibabel  # only runs that export need it

    recon = np.asarray(reconstruction, dtype=np.float32)
    dx, dy, dz = (float(v) for v in voxel_size)
    data = np.ascontiguousarray(recon[:, ::-1, :].transpose(2, 1, 0))  # (w, h, S)
    image = nibabel.Nifti1Image(data, np.diag([dy, dx, dz, 1.0]))
    image.header.set_xyzt_units("mm")
    return write_atomic(path, gzip.compress(image.to_bytes(), mtime=0))


class Staging:
    """A hidden directory inside ``run_dir`` mirroring the run's output tree.

    Write every output under :attr:`root` (e.g. ``staging.path("per_volume.csv")``), then
    :meth:`publish` renames each file onto the same relative path in ``run_dir`` (files
    are replaced one by one, folders merged) and removes the staging directory;
    :meth:`discard` removes it without publishing. Used as a context manager, leaving the
    block with an exception discards.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.run_dir))

    def path(self, relative: str | os.PathLike) -> Path:
        """The staging location of ``relative`` (its parent folders are created)."""
        out = self.root / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def publish(self) -> list[Path]:
        """Move every staged file into ``run_dir``; returns the published paths (sorted)."""
        published = []
        for src in sorted(p for p in self.root.rglob("*") if p.is_file()):
            dst = self.run_dir / src.relative_to(self.root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            published.append(dst)
        shutil.rmtree(self.root, ignore_errors=True)
        return published

    def discard(self) -> None:
        """Remove the staging directory and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()
