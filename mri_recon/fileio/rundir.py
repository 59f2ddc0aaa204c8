"""A command that fails leaves its run directory as it found it.

Hydra writes ``.hydra/`` (config, overrides) and ``<job>.log`` into the run directory before
the task runs; a task that then refuses (bad data, a finished directory, a checkpoint it
cannot continue) would leave a rewritten ``.hydra/overrides.yaml`` in an existing run, which
the next resume reads as its config, or a new directory holding only those files.
:func:`restored_on_failure` undoes both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _is_record(rel: Path) -> bool:
    """Hydra's own files: ``.hydra/*`` and a top-level ``*.log``."""
    return rel.parts[0] == ".hydra" or (len(rel.parts) == 1 and rel.suffix == ".log")


def _files(run_dir: Path) -> dict[Path, os.stat_result]:
    return {p.relative_to(run_dir): p.stat() for p in run_dir.rglob("*") if p.is_file()}


@contextmanager
def restored_on_failure(
    run_dir: str | os.PathLike | None, actual: Callable[[], str | None] | None = None
) -> Iterator[None]:
    """Run the block; if it raises (``SystemExit`` with a non-zero code included), put
    ``run_dir`` back: a directory the block created that holds only Hydra's files is
    removed; in an existing one, Hydra's files are restored byte for byte (mtime too) when
    nothing else in it changed. A directory where the task wrote results (checkpoints of a
    run that failed later) is left as it is: its record describes those files.
    """
    if run_dir is None:
        yield
        return
    run_dir = Path(run_dir)
    existed = run_dir.is_dir()
    before = _files(run_dir) if existed else {}
    saved = {rel: (run_dir / rel).read_bytes() for rel in before if _is_record(rel)}
    try:
        yield
    except BaseException as exc:
        if not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            used = Path(actual() or run_dir) if actual else run_dir
            if used.resolve() == run_dir.resolve():
                _restore(run_dir, existed, before, saved)
            else:
                _restore(used, False, {}, {})
        raise


def _restore(run_dir: Path, existed: bool, before: dict, saved: dict[Path, bytes]) -> None:
    if not run_dir.is_dir():
        return
    now = _files(run_dir)
    others = {r: (s.st_size, s.st_mtime_ns) for r, s in now.items() if not _is_record(r)}
    if others != {r: (s.st_size, s.st_mtime_ns) for r, s in before.items() if not _is_record(r)}:
        return  # the task wrote results: keep the record that describes them
    if not existed:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    for rel in now:
        if _is_record(rel) and rel not in saved:
            (run_dir / rel).unlink(missing_ok=True)
    for rel, data in saved.items():
        path = run_dir / rel
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        os.utime(path, ns=(before[rel].st_atime_ns, before[rel].st_mtime_ns))
