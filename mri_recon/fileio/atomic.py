"""Atomic writes that leave files and folders with the usual permissions.

``tempfile.mkstemp`` creates its file with mode 0600 and ``mkdtemp`` its folder with 0700,
whatever the umask: renamed into place as they are, a run's CSVs, reports and the synthetic
dataset's folders would be unreadable to everyone else on a shared machine. Here the
temporary file or folder gets the mode ``open``/``mkdir`` would give it (0666 / 0777 less the
umask) before it is renamed.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


class OutputError(ValueError):
    """An output location that cannot be written; the message is one line naming the path."""


def _current_umask() -> int:
    """The process umask (read from /proc where possible; ``os.umask`` has no getter)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def umask_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets under the current umask."""
    return (0o777 if directory else 0o666) & ~_current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; if the body succeeds, give it the usual
    permissions and rename it onto ``path``; otherwise remove it.

    The temporary name is ``.<name>.<random>.tmp``: hidden, and matched by no ``*.h5`` or
    ``*.png`` glob even if a crash leaves it behind (so name the format explicitly when
    writing, e.g. ``savefig(tmp, format="png")``). The parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns ``path`` as a Path."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def _csv_cell(value: Any) -> Any:
    """None and NaN become empty cells; floats keep full precision (repr)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else value


def write_csv(
    path: str | os.PathLike, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
) -> Path:
    """Write ``rows`` as CSV with exactly ``columns`` (in that order), atomically: the one
    CSV writer of the package (empty cell for None/NaN, floats at full precision).

    Args:
        path: destination ``.csv``.
        rows: mappings holding at least ``columns`` (other keys are ignored).
        columns: the header.

    Returns:
        ``path``.
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        missing = [c for c in columns if c not in row]
        if missing:
            raise ValueError(f"{Path(path).name}: row {dict(row)!r:.120} lacks columns {missing}")
        writer.writerow({c: _csv_cell(row[c]) for c in columns})
    return write_atomic(path, buf.getvalue())


def read_csv(
    path: str | os.PathLike, types: Mapping[str, Callable[[str], Any]] | None = None
) -> list[dict[str, Any]]:
    """The rows of a CSV the package wrote (:func:`write_csv`), the one CSV reader.

    Args:
        path: the ``.csv`` file.
        types: column -> the function that turns a cell into its value (``float``,
            ``int``): values round-trip exactly (floats are written with ``repr``), and an
            empty cell of such a column is None. Other cells stay strings.

    Returns:
        One dict per row, keys in the header's order.
    """
    types = types or {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, kind in types.items():
            if key in row:
                row[key] = None if row[key] in ("", None) else kind(row[key])
    return rows


def output_dir_problem(path: str | os.PathLike) -> str | None:
    """Why the folder ``path`` cannot be used for outputs, or None where it can.

    An existing folder must be writable; a missing one must be creatable: its nearest
    existing ancestor is a folder in which a folder can be made (tried, so that a read-only
    filesystem or a pseudo-filesystem shows, even for root; nothing existing is touched).

    Returns:
        One line naming the offending path, e.g. ``/a/b is a file, not a folder``.
    """
    path = Path(os.path.abspath(path))
    existing = next(p for p in (path, *path.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        kind = "a broken link" if not existing.exists() else "a file, not a folder"
        return f"{existing} is {kind}"
    if existing == path:
        return None if os.access(path, os.W_OK | os.X_OK) else f"cannot write in {path}"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-test-", dir=existing))
    except OSError as err:
        return f"cannot create folders in {existing} ({err.strerror})"
    return None


def make_temp_dir(parent: str | os.PathLike, prefix: str, suffix: str = "") -> Path:
    """A new hidden-by-prefix folder in ``parent`` with the usual folder permissions (to be
    renamed into place when complete)."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(tmp, umask_mode(directory=True))
    return tmp
