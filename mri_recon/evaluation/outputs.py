"""Atomic writers for the evaluation's outputs, and a staging area that publishes a run's
outputs all together.

Every file is written to a temporary name in its destination folder and renamed into place
(``os.replace`` is atomic on POSIX within one file system), so a reader never sees a
half-written file. A run writes into a :class:`Staging` directory inside the run directory
and publishes only when the whole run has succeeded: the previous outputs are replaced as a
whole (a rerun leaves nothing of an earlier one beside it); a failed or killed run leaves the
previous outputs as they were, and its staging directory is removed by the next run.
"""

from __future__ import annotations

import fcntl
import gzip
import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import h5py
import numpy as np

from mri_recon.fileio import OutputError, atomic_path, make_temp_dir, write_atomic


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


OUTPUTS = ("per_volume.csv", "summary.md", "summary.json", "figures", "reconstructions")
_SWAPPED_OUT, _PUBLISHED = "swapped-out", "published"  # markers of the publish's progress


class Staging:
    """A hidden directory inside ``run_dir`` where a run's outputs are written, then published
    all together: afterwards ``run_dir`` holds exactly this run's ``outputs``, or, if the run
    fails or is killed, the previous run's, unchanged.

    Write every output under :attr:`root` (``staging.path("per_volume.csv")``). :meth:`publish`
    moves each of the previous ``outputs`` (whole files and folders, so a rerun with fewer
    methods keeps no old ``reconstructions/<method>/``) aside into the staging directory,
    moves the new ones in, and removes the staging directory with the old outputs; if a move
    fails, every move is undone and :class:`OutputError` names the path. The run directory is
    locked (``flock``) from construction to the end, so two runs never write into it at once;
    a staging directory left by a killed run (``.staging-*``) is undone and removed by the next
    run. Used as a context manager, leaving the block with an exception discards.
    """

    def __init__(self, run_dir: str | os.PathLike, outputs: Sequence[str] = OUTPUTS) -> None:
        self.run_dir, self.outputs = Path(run_dir), tuple(outputs)
        self._lock = None
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.run_dir, os.O_RDONLY)
            _flock(self._lock)
            for stale in sorted(self.run_dir.glob(".staging-*")):  # from a killed run
                _undo(stale, self.run_dir, self.outputs)
                shutil.rmtree(stale)
            self.dir = make_temp_dir(self.run_dir, ".staging-")
        except OSError as err:
            if self._lock is not None:
                os.close(self._lock)
            reason = (
                "another run is writing into it"  # its flock
                if isinstance(err, BlockingIOError)
                else f"cannot write outputs here ({err.strerror})"
            )
            raise OutputError(f"{err.filename or self.run_dir}: {reason}") from None
        self.root = self.dir / "new"
        self.root.mkdir()

    def path(self, relative: str | os.PathLike) -> Path:
        """The staging location of ``relative`` (its parent folders are created)."""
        out = self.root / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def publish(self) -> list[Path]:
        """Replace the previous outputs by the staged ones; returns the published files."""
        unknown = sorted({p.name for p in self.root.iterdir()} - set(self.outputs))
        assert not unknown, f"staged {unknown} are not among the outputs {self.outputs}"
        published = sorted(self.run_dir / p.relative_to(self.root) for p in _files(self.root))
        old, target = self.dir / "old", self.run_dir
        old.mkdir()
        try:
            for name in self.outputs:
                if _exists(target := self.run_dir / name):
                    os.rename(target, old / name)
            (self.dir / _SWAPPED_OUT).touch()
            for new in sorted(self.root.iterdir()):
                os.rename(new, target := self.run_dir / new.name)
        except OSError as err:
            _undo(self.dir, self.run_dir, self.outputs)
            self.discard()
            raise OutputError(
                f"{target}: cannot replace the previous output ({err.strerror}); "
                f"{self.run_dir} is left as it was"
            ) from None
        (self.dir / _PUBLISHED).touch()
        self.discard()
        return published

    def discard(self) -> None:
        """Remove the staging directory and everything in it, and unlock the run directory."""
        shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()


def _flock(fd: int) -> None:
    """Lock the run directory ``fd`` for this run; BlockingIOError if another run holds it.
    A file system without flock (some NFS mounts) goes on unlocked."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise
    except OSError:
        pass


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def _undo(staged: Path, run_dir: Path, outputs: Sequence[str]) -> None:
    """Put ``run_dir``'s previous outputs back from an unfinished publish in ``staged``.

    Idempotent, so a run killed while undoing is undone by the next. After the ``published``
    marker there is nothing to undo; after ``swapped-out`` every output in ``run_dir`` is a
    new one (moved back into ``new/``); then everything in ``old/`` goes back.
    """
    if (staged / _PUBLISHED).exists():
        return
    if (staged / _SWAPPED_OUT).exists():
        for name in outputs:
            if _exists(run_dir / name) and not _exists(staged / "new" / name):
                os.rename(run_dir / name, staged / "new" / name)
    if (staged / "old").is_dir():
        for previous in (staged / "old").iterdir():
            os.rename(previous, run_dir / previous.name)
