"""Content hashes of input files, and the check that they are unchanged.

A file under :data:`FULL_HASH_LIMIT` (1 GiB) is hashed with ``sha256`` over all its bytes.
A larger one (a multi-coil brain volume, a big checkpoint) gets ``sha256-blocks``: the
sha256 of the concatenated sha256 digests of its consecutive :data:`BLOCK_SIZE` (64 MiB)
blocks, the blocks hashed in parallel threads (``hashlib`` releases the GIL). It still reads
every byte, so any change to any dataset or attribute of an HDF5 file changes it (a hash of
the object tree plus sampled chunks would be faster but would miss an edit in an unsampled
chunk); it runs at disk speed instead of one core's ~0.7 GB/s. Files of a manifest are
hashed in parallel too.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

FULL_HASH_LIMIT = 1 << 30
BLOCK_SIZE = 64 << 20
_READ = 8 << 20


def _workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def _sha256_range(path: Path, start: int, length: int) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(_READ, length))
            if not chunk:
                break
            digest.update(chunk)
            length -= len(chunk)
    return digest.digest()


def hash_file(path: str | os.PathLike) -> dict[str, Any]:
    """``{"name", "path", "size", "hash_method", "hash"}`` of one file (see the module docstring).

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < FULL_HASH_LIMIT:
        digest, method = _sha256_range(path, 0, size).hex(), "sha256"
    else:
        with ThreadPoolExecutor(_workers()) as pool:
            starts = range(0, size, BLOCK_SIZE)
            blocks = pool.map(lambda s: _sha256_range(path, s, BLOCK_SIZE), starts)
            digest = hashlib.sha256(b"".join(blocks)).hexdigest()
        method = f"sha256-blocks-{BLOCK_SIZE >> 20}MiB"
    return {
        "name": path.name,
        "path": str(path),
        "size": size,
        "hash_method": method,
        "hash": digest,
    }


def manifest(paths: Iterable[str | os.PathLike]) -> list[dict[str, Any]]:
    """:func:`hash_file` of every path (in the given order), files hashed in parallel."""
    paths = [Path(p) for p in paths]
    with ThreadPoolExecutor(_workers()) as pool:
        return list(pool.map(hash_file, paths))


def check_manifest(entries: Sequence[dict[str, Any]]) -> None:
    """Check that every file of a manifest is there with its recorded size and hash.

    Raises:
        ValueError: one line naming the first missing or changed file.
    """
    for entry in entries:
        path = Path(entry["path"])
        if not path.is_file():
            raise ValueError(f"{path}: missing (it was read by the recorded run)")
        size = path.stat().st_size
        if size != entry["size"]:
            raise ValueError(f"{path}: changed since the run (size {entry['size']} -> {size})")
    with ThreadPoolExecutor(_workers()) as pool:
        now = list(pool.map(hash_file, [e["path"] for e in entries]))
    for entry, current in zip(entries, now, strict=True):
        if (current["hash_method"], current["hash"]) != (entry["hash_method"], entry["hash"]):
            raise ValueError(
                f"{entry['path']}: changed since the run ({entry['hash_method']} "
                f"{entry['hash'][:12]}... recorded, {current['hash'][:12]}... now)"
            )
