"""Check every volume of a format under a folder: layout, header, attrs and finite values.

A file's challenge and split are taken from its folder name (``<challenge>_<split>``) where it
follows fastMRI's convention (another format: its own split folders,
:mod:`mri_recon.data.formats`), so a val file without its target is bad (a train file without
one is OK for self-supervised training only, and its line says so: ``(no target: trains with
training=ssdu only)``); elsewhere the
challenge comes from the k-space rank and a file without target must carry its ``mask``.
The verdict is :func:`mri_recon.data.prescan.scan_volume`'s, the one training and evaluation
use. Hidden files (``.*``) are skipped, like :func:`mri_recon.data.fastmri.list_volumes` does;
symlinked folders are followed (as training and evaluation follow a symlinked split folder)
and a dangling ``.h5`` symlink is reported BAD.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mri_recon.data.fastmri import DataError, VolumeInfo
from mri_recon.data.formats import get_reader
from mri_recon.data.prescan import scan_volume


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The verdict on one file.

    Attributes:
        path: the checked file.
        ok: True when the file is a valid fastMRI volume.
        reason: why it is bad (one line, without the path), "" when ok.
        info: the volume's description when ok, else None.
        warnings: non-fatal findings, one line each.
        targetless: a training file without a target (valid for self-supervised training).
    """

    path: Path
    ok: bool
    reason: str = ""
    info: VolumeInfo | None = None
    warnings: tuple[str, ...] = ()
    targetless: bool = False

    def line(self) -> str:
        """``OK <path>`` (with any warnings in parentheses) or ``BAD <path>: <reason>``."""
        if not self.ok:
            return f"BAD {self.path}: {self.reason}"
        note = f" (warning: {'; '.join(self.warnings)})" if self.warnings else ""
        if self.targetless:
            note = f" (no target: trains with training=ssdu only){note}"
        return f"OK {self.path}{note}"


def find_volumes(path: str | os.PathLike, reader: Any = None) -> list[Path]:
    """The volumes under ``path`` (``.h5`` files, or those ``reader`` calls volumes: a format's
    :meth:`~mri_recon.data.formats.base.FormatReader.is_volume`), recursively through
    symlinked folders, sorted; dangling symlinks included, so they are reported), or
    ``[path]`` for a file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: ``path`` is a folder without any ``.h5`` file.
    """
    path, reader = Path(path), reader or get_reader()
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    files, seen = [], set()
    for folder, dirs, names in os.walk(path, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or a second link to a folder already listed
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        files += [Path(folder) / n for n in names if reader.is_volume(Path(folder) / n)]
    files = sorted(p for p in files if p.is_file() or not p.exists())  # dangling: reported
    if not files:
        where = "" if reader.name == "fastmri" else f" (format {reader.name})"
        raise DataError(path, f"no {reader.suffix} files under this directory{where}")
    return files


def check_file(
    path: str | os.PathLike, full: bool = True, rescan: bool = False, reader: Any = None
) -> CheckResult:
    """Check one volume; never raises for bad data.

    Args:
        path: the volume file.
        full: also read every slice to find NaN/Inf (else header, keys, shapes and attrs only).
        rescan: read every slice even where a clean scan of the unchanged file is cached.
        reader: the format's reader (None: fastMRI); its folders give the split.
    """
    path, reader = Path(path), reader or get_reader()
    challenge, split = reader.split_of(path)
    if path.is_symlink() and not path.exists():
        return CheckResult(path, False, f"dangling symlink (to {os.readlink(path)})")
    try:
        prescan = "full" if full else "header"
        info = scan_volume(
            path, challenge, split, prescan, rescan, reader, require_target=split != "train"
        )
    except DataError as err:
        reason = str(err).removeprefix(f"{path}: ")
        return CheckResult(path, False, " ".join(reason.split()))
    except Exception as err:  # noqa: BLE001  (one odd file must not stop the whole check)
        reason = " ".join(f"unexpected {type(err).__name__}: {err}".split())
        return CheckResult(path, False, reason)
    targetless = split == "train" and info.target_key is None
    return CheckResult(path, True, info=info, warnings=info.warnings, targetless=targetless)


def iter_check_directory(
    path: str | os.PathLike, full: bool = True, rescan: bool = False, reader: Any = None
) -> Iterator[CheckResult]:
    """:func:`check_file` on each of :func:`find_volumes` (``path``), one result at a time."""
    for file in find_volumes(path, reader):
        yield check_file(file, full=full, rescan=rescan, reader=reader)


def check_directory(
    path: str | os.PathLike, full: bool = True, reader: Any = None
) -> list[CheckResult]:
    """Check every volume under ``path``; see :func:`iter_check_directory`."""
    return list(iter_check_directory(path, full=full, reader=reader))


def summary_line(results: list[CheckResult]) -> str:
    """``checked N files: a OK, b BAD``."""
    bad = sum(not r.ok for r in results)
    return f"checked {len(results)} files: {len(results) - bad} OK, {bad} BAD"
