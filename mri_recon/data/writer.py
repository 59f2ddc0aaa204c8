"""Write fastMRI-layout HDF5 volumes atomically (temporary file in the same folder, then
rename), so a crash never leaves a half-written file under its final name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mri_recon.fileio import atomic_path


def write_volume(
    path: str | Path,
    kspace: np.ndarray,
    *,
    header: bytes,
    attrs: Mapping[str, Any],
    target: np.ndarray | None = None,
    target_key: str | None = None,
    mask: np.ndarray | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write one volume in the fastMRI layout.

    Args:
        path: destination ``.h5`` file.
        kspace: complex64 (S, H, W) single-coil or (S, C, H, W) multi-coil.
        header: ISMRMRD XML bytes (see :func:`mri_recon.data.header.make_ismrmrd_header`).
        attrs: file attributes (``max``, ``norm``, ``acquisition``, ``patient_id``, ...).
        target: float32 (S, h, w) or None (test files).
        target_key: dataset name of the target; default ``reconstruction_esc`` for
            single-coil and ``reconstruction_rss`` for multi-coil.
        mask: (W,) sampled columns, for test files whose k-space is already undersampled.
        extra: further datasets (e.g. ``reconstruction_rss`` in single-coil files).

    Returns:
        The written path.
    """
    path = Path(path)
    if target is not None and target_key is None:
        target_key = "reconstruction_esc" if kspace.ndim == 3 else "reconstruction_rss"
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as hf:
        hf.create_dataset("kspace", data=kspace)
        if target is not None:
            hf.create_dataset(target_key, data=target)
        if mask is not None:
            hf.create_dataset("mask", data=mask)
        for key, value in (extra or {}).items():
            hf.create_dataset(key, data=value)
        hf.create_dataset("ismrmrd_header", data=np.bytes_(header))
        for key, value in attrs.items():
            hf.attrs[key] = value
    return path
