"""Check every fastMRI volume under a folder: layout, header, attrs and finite values.

A file's challenge and split are taken from its folder name (``<challenge>_<split>``) where it
follows fastMRI's convention, so a train or val file without its target is bad; elsewhere the
challenge comes from the k-space rank and a file without target must carry its ``mask``.
Hidden files (``.*``) are skipped, like :func:`mri_recon.data.fastmri.list_volumes` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mri_recon.data.fastmri import (
    DataError,
    VolumeInfo,
    check_volume,
    parse_split_dir,
    read_volume_info,
)


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The verdict on one file.

    Attributes:
        path: the checked file.
        ok: True when the file is a valid fastMRI volume.
        reason: why it is bad (one line, without the path), "" when ok.
        info: the volume's description when ok, else None.
        warnings: non-fatal findings, one line each.
    """

    path: Path
    ok: bool
    reason: str = ""
    info: VolumeInfo | None = None
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        """``OK <path>`` (with any warnings in parentheses) or ``BAD <path>: <reason>``."""
        if not self.ok:
            return f"BAD {self.path}: {self.reason}"
        note = f" (warning: {'; '.join(self.warnings)})" if self.warnings else ""
        return f"OK {self.path}{note}"


def find_volumes(path: str | os.PathLike) -> list[Path]:
    """The ``.h5`` files under ``path`` (recursively, sorted), or ``[path]`` for a file.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataError: ``path`` is a folder without any ``.h5`` file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or directory")
    files = sorted(
        p
        for p in path.rglob("*.h5")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    if not files:
        raise DataError(path, "no .h5 files under this directory")
    return files


def check_file(path: str | os.PathLike, full: bool = True) -> CheckResult:
    """Check one volume; never raises for bad data.

    Args:
        path: the ``.h5`` file.
        full: also read every slice to find NaN/Inf (else header, keys, shapes and attrs only).
    """
    path = Path(path)
    challenge, split = parse_split_dir(path.parent) or (None, None)
    try:
        info = (check_volume if full else read_volume_info)(path, challenge, split)
    except DataError as err:
        reason = str(err).removeprefix(f"{path}: ")
        return CheckResult(path, False, " ".join(reason.split()))
    except Exception as err:  # noqa: BLE001  (one odd file must not stop the whole check)
        reason = " ".join(f"unexpected {type(err).__name__}: {err}".split())
        return CheckResult(path, False, reason)
    return CheckResult(path, True, info=info, warnings=info.warnings)


def iter_check_directory(path: str | os.PathLike, full: bool = True) -> Iterator[CheckResult]:
    """:func:`check_file` on each of :func:`find_volumes` (``path``), one result at a time."""
    for file in find_volumes(path):
        yield check_file(file, full=full)


def check_directory(path: str | os.PathLike, full: bool = True) -> list[CheckResult]:
    """Check every ``.h5`` under ``path``; see :func:`iter_check_directory`."""
    return list(iter_check_directory(path, full=full))


def summary_line(results: list[CheckResult]) -> str:
    """``checked N files: a OK, b BAD``."""
    bad = sum(not r.ok for r in results)
    return f"checked {len(results)} files: {len(results) - bad} OK, {bad} BAD"
