"""Read-only HDF5 access with one-line errors: the helpers every fastMRI reader shares."""

from __future__ import annotations

import os
import re
from pathlib import Path

import h5py
import numpy as np


class DataError(ValueError):
    """Bad input data. The message is one line starting with the file or directory path.

    ``DataError(path, reason)`` builds ``"<path>: <reason>"`` (whitespace collapsed to one
    line); ``DataError(message)`` takes a finished message (this form also lets the
    exception cross pickling and DataLoader workers; a worker's ``Caught DataError ...``
    wrapper with its traceback is cut back to the original one-line message).
    """

    def __init__(self, path: str | os.PathLike, reason: str | None = None) -> None:
        if reason is None:
            message = str(path)
            if message.startswith("Caught DataError"):
                last_line = message.rstrip().rpartition("\n")[2]
                message = last_line.partition("DataError: ")[2] or message
            self.path, self.reason = None, message
            super().__init__(message)
            return
        self.path, self.reason = Path(path), " ".join(str(reason).split())
        super().__init__(f"{path}: {self.reason}")


def h5_reason(err: BaseException) -> str:
    """The innermost parenthesised reason of an h5py error, e.g. 'truncated file: eof = 96'."""
    text = " ".join(str(err).split())
    found = re.search(r"\(([^()]+)\)\)*$", text)
    return found.group(1) if found else text


def open_h5(path: Path) -> h5py.File:
    """``path`` opened read-only; DataError if it is not a readable HDF5 file."""
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(path, f"not a readable HDF5 file ({h5_reason(err)})") from None


def read_dataset(
    ds: h5py.Dataset, path: Path, index: int | tuple = (), out: np.ndarray | None = None
) -> np.ndarray:
    """``ds[index]`` (a slice index, or ``()`` for all); DataError naming the dataset.

    With ``out`` (the shape of ``ds[index]``), slice ``index`` is read straight into it
    (HDF5 converts complex128/float64 on the fly): one copy, no selection parsing.
    """
    try:
        if out is None:
            return ds[index]
        ds.read_direct(out, np.s_[index])
        return out
    except (OSError, ValueError, RuntimeError, TypeError) as err:
        where = f"slice {index}" if isinstance(index, int) else "data"
        raise DataError(
            path, f"cannot read {ds.name.lstrip('/')} {where} ({h5_reason(err)})"
        ) from None


def check_finite(path: Path, key: str, array: np.ndarray, first_slice: int = 0) -> None:
    """DataError naming ``key`` and the first slice of ``array`` (S, ...) with NaN/Inf."""
    flat = array.reshape(array.shape[0], -1)
    # Fast path: a sum is finite only if every term is (NaN and Inf propagate); the exact,
    # slower test runs when it is not, which also covers a float32 overflow of the sum.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(flat.sum()):
            return
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        bad = first_slice + int(np.argmin(finite))
        raise DataError(path, f"{key} has NaN or Inf values (first in slice {bad})")
