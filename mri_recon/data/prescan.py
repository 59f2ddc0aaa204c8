"""The prescan: the one verdict on a volume, with its value scan remembered between runs.

Training and evaluation call :func:`scan_volume` on every file they will read before they
write anything, and ``mri-recon-data check`` calls it on every file it lists, so the three
agree on what is bad. ``prescan="header"`` validates layout, header, attrs and shapes
(:func:`~mri_recon.data.fastmri.read_volume_info`); ``"full"`` also reads every slice for
NaN/Inf (:func:`~mri_recon.data.fastmri.check_values`). A clean value scan is remembered
per (resolved path, size, mtime, inode change time, inode, device) in :func:`cache_dir`, never next to the data (inputs are
read-only); for another format than fastMRI the key adds the format with its options and the
same of every companion file its samples are read from (M4Raw's other repetitions,
CMRxRecon's mask file), so a second run on unchanged files costs a header read. One small JSON file per
volume: concurrent runs (DDP ranks, multirun jobs) never lose each other's entries.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from mri_recon.data.fastmri import VolumeInfo, check_values, read_volume_info
from mri_recon.fileio import write_atomic

PRESCAN_MODES = ("full", "header")
# bump when check_values changes what it rejects: older verdicts are then ignored
SCAN_VERSION = 1


def check_prescan(prescan: str) -> str:
    """``prescan`` if it is one of :data:`PRESCAN_MODES`, else ValueError naming it (the
    training data module's check; the evaluation's is ``EvalSettings``)."""
    if prescan not in PRESCAN_MODES:
        raise ValueError(f"data.prescan: {prescan!r} is not one of {PRESCAN_MODES}")
    return prescan


def cache_dir() -> Path:
    """``$MRI_RECON_CACHE``, else ``$XDG_CACHE_HOME/mri_recon``, else ``~/.cache/mri_recon``."""
    if os.environ.get("MRI_RECON_CACHE"):
        return Path(os.environ["MRI_RECON_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "mri_recon"


def stat_key(path: str | os.PathLike) -> dict:
    """What identifies a file's content without reading it: resolved path, size, mtime,
    inode change time (``utime``, ``touch -d``, ``cp -p`` and ``rsync -a`` cannot set it;
    every write moves it), inode and device.

    Raises:
        OSError: the file cannot be stat'ed.
    """
    real = Path(path).resolve()
    st = real.stat()
    return {
        "path": str(real),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "inode": st.st_ino,
        "device": st.st_dev,
    }


def _entry(path: Path, reader: Any = None) -> tuple[Path, dict] | None:
    """(cache file, key) of a volume as it is now; None if it cannot be stat'ed."""
    try:
        key = {**stat_key(path), "v": SCAN_VERSION}
        if reader is not None:  # another format: its options and companion files count
            key["format"] = reader.tag()
            key["companions"] = [stat_key(p) for p in reader.companions(Path(path))]
    except OSError:
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return cache_dir() / "prescan" / f"{digest}.json", key


def _known_clean(entry: Path, key: dict) -> bool:
    try:
        return json.loads(entry.read_text()) == key
    except (OSError, ValueError):
        return False


def scan_values(info: VolumeInfo, rescan: bool = False) -> None:
    """:func:`~mri_recon.data.fastmri.check_values` unless a clean scan of the file as it is
    now (same resolved path, size, mtime, ctime, inode and device) is cached; a clean scan is cached.

    Raises:
        DataError: the first NaN/Inf (slice and key), or an unreadable slice.
    """
    found = _entry(info.path, info.reader)
    if found is not None and not rescan and _known_clean(*found):
        return
    check_values(info)
    if found is not None:  # only clean verdicts are kept: a read error may be transient
        try:
            write_atomic(found[0], json.dumps(found[1]) + "\n")
        except OSError as err:
            warnings.warn(
                f"prescan results are not cached: {found[0].parent} ({err.strerror})", stacklevel=2
            )


def scan_volume(
    path: str | os.PathLike,
    challenge: str | None = None,
    split: str | None = None,
    prescan: str = "full",
    rescan: bool = False,
    reader: Any = None,
    require_target: bool = True,
) -> VolumeInfo:
    """The verdict on one volume: :func:`~mri_recon.data.fastmri.read_volume_info`, and for
    ``prescan="full"`` :func:`scan_values`.

    Args:
        path: the ``.h5`` file.
        challenge, split: as for :func:`~mri_recon.data.fastmri.read_volume_info`.
        prescan: "full" or "header" (checked by the caller's settings: anything but "full"
            reads the header only).
        rescan: ignore a cached clean verdict.
        reader: the :mod:`~mri_recon.data.formats` reader of the data (None: fastMRI).
        require_target: as for :func:`~mri_recon.data.fastmri.read_volume_info`.

    Raises:
        DataError: one line naming the file and what is wrong.
    """
    info = read_volume_info(path, challenge, split, reader=reader, require_target=require_target)
    if prescan == "full":
        scan_values(info, rescan)
    return info
