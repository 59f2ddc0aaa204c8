"""Check every fastMRI volume under a folder: layout, header, attrs and finite values.

A file's challenge and split are taken from its folder name (``<challenge>_<split>``) where it
follows fastMRI's convention, so a val file without its target is bad (a train file without
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

from mri_recon.data.fastmri import DataError, VolumeInfo, parse_split_dir
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


def find_volumes(path: str | os.PathLike) -> list[Path]:
    """The ``.h5`` files under ``path`` (recursively through symlinked folders, sorted; dangling
    ``.h5`` symlinks included, so they are reported), or ``[path]`` for a file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: ``path`` is a folder without any ``.h5`` file.
    """
    path = Path(path)
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
        files += [Path(folder) / n for n in names if n.endswith(".h5") and not n.startswith(".")]
    files = sorted(p for p in files if p.is_file() or not p.exists())  # dangling: reported
    if not files:
        raise DataError(path, "no .h5 files under this directory")
    return files


def check_file(path: str | os.PathLike, full: bool = True, rescan: bool = False) -> CheckResult:
    """Check one volume; never raises for bad data.

    Args:
        path: the ``.h5`` file.
        full: also read every slice to find NaN/Inf (else header, keys, shapes and attrs only).
        rescan: read every slice even where a clean scan of the unchanged file is cached.
    """
    path = Path(path)
    challenge, split = parse_split_dir(path.parent) or (None, None)
    if path.is_symlink() and not path.exists():
        return CheckResult(path, False, f"dangling symlink (to {os.readlink(path)})")
    try:
        prescan = "full" if full else "header"
        info = scan_volume(path, challenge, split, prescan, rescan, require_target=split != "train")
    except DataError as err:
        reason = str(err).removeprefix(f"{path}: ")
        return CheckResult(path, False, " ".join(reason.split()))
    except Exception as err:  # noqa: BLE001  (one odd file must not stop the whole check)
        reason = " ".join(f"unexpected {type(err).__name__}: {err}".split())
        return CheckResult(path, False, reason)
    targetless = split == "train" and info.target_key is None
    return CheckResult(path, True, info=info, warnings=info.warnings, targetless=targetless)


def iter_check_directory(
    path: str | os.PathLike, full: bool = True, rescan: bool = False
) -> Iterator[CheckResult]:
    """:func:`check_file` on each of :func:`find_volumes` (``path``), one result at a time."""
    for file in find_volumes(path):
        yield check_file(file, full=full, rescan=rescan)


def check_directory(path: str | os.PathLike, full: bool = True) -> list[CheckResult]:
    """Check every ``.h5`` under ``path``; see :func:`iter_check_directory`."""
    return list(iter_check_directory(path, full=full))


def summary_line(results: list[CheckResult]) -> str:
    """``checked N files: a OK, b BAD``."""
    bad = sum(not r.ok for r in results)
    return f"checked {len(results)} files: {len(results) - bad} OK, {bad} BAD"
