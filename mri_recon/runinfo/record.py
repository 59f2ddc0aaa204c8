"""``provenance.json``: the append-only record of a run directory.

Layout (``format_version`` 1)::

    {"format_version": 1, "kind": "train" | "eval", "segments": [segment, ...]}

A segment is one process's stretch of work in the run directory: a training run resumed
from ``checkpoints/last.ckpt`` appends a segment, never replaces one. A segment is written
when it starts (``"status": "running"``) and rewritten in place when it ends
(``"completed"``); a segment still ``running`` after its process ended was killed or
crashed. See ``docs/DESIGN.md`` for the fields of a segment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mri_recon.fileio import write_atomic

FORMAT_VERSION = 1
RECORD_NAME = "provenance.json"
KINDS = ("train", "eval")


class RecordError(ValueError):
    """A missing, unreadable or too new run record; the message is one line naming it."""


def read_record(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The record of ``run_dir``, checked: a JSON object of a known kind and format.

    Raises:
        RecordError: no record, not JSON, or a ``format_version`` newer than this code.
    """
    path = Path(run_dir) / RECORD_NAME
    if not path.is_file():
        raise RecordError(f"{path}: no run record (not a run directory of mri-recon-train/eval)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RecordError(f"{path}: unreadable run record ({err})") from None
    version = record.get("format_version") if isinstance(record, dict) else None
    problem = None
    if not isinstance(version, int) or isinstance(version, bool):
        problem = "format_version: missing or not an integer"
    elif version > FORMAT_VERSION:
        problem = (
            f"format_version {version} is newer than this mri_recon reads ({FORMAT_VERSION}); "
            "upgrade mri_recon"
        )
    elif record.get("kind") not in KINDS or not isinstance(record.get("segments"), list):
        problem = f"kind must be one of {KINDS} with a list of segments"
    if problem:
        raise RecordError(f"{path}: {problem}")
    return record


def _write(run_dir: Path, record: dict[str, Any]) -> Path:
    text = json.dumps(record, indent=2, default=str)
    return write_atomic(run_dir / RECORD_NAME, text + "\n")


def append_segment(
    run_dir: str | os.PathLike, kind: str, segment: dict[str, Any], into: Path | None = None
) -> Path:
    """Append ``segment`` to the record of ``run_dir`` (a new record if there is none; a
    record of another kind or an unreadable one is kept aside as ``provenance.json.bak``).

    Args:
        into: write the new record into this folder instead (a staging folder whose files
            are published with the run's outputs, as one set).
    """
    run_dir = Path(run_dir)
    try:
        record = read_record(run_dir)
    except RecordError:
        record = None
    if record is None or record["kind"] != kind:
        old = run_dir / RECORD_NAME
        if old.is_file():
            write_atomic(old.with_name(RECORD_NAME + ".bak"), old.read_bytes())
        record = {"format_version": FORMAT_VERSION, "kind": kind, "segments": []}
    record["segments"].append(segment)
    return _write(into or run_dir, record)


def replace_last_segment(run_dir: str | os.PathLike, segment: dict[str, Any]) -> Path:
    """Rewrite the last segment of ``run_dir``'s record (the one this process appended)."""
    record = read_record(run_dir)
    record["segments"][-1] = segment
    return _write(Path(run_dir), record)


def last_completed(record: dict[str, Any], where: str = "record") -> dict[str, Any]:
    """The last segment with ``"status": "completed"``.

    Raises:
        RecordError: none completed.
    """
    done = [s for s in record["segments"] if isinstance(s, dict) and s.get("status") == "completed"]
    if not done:
        raise RecordError(f"{where}: no completed segment (the run never finished)")
    return done[-1]


def _at(cwd: str | None, path: str) -> str:
    """``path`` as the recorded run saw it: relative paths are relative to its ``cwd``."""
    return path if os.path.isabs(path) or not cwd else os.path.join(cwd, path)


def replay_inputs(kind: str, segment: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest entries a replay of ``segment`` reads, with relative paths resolved
    against the recorded working directory: the data files, an evaluation's checkpoints, a
    training run's validated checkpoint (not the checkpoint it resumed from, which its own
    training overwrote).

    Raises:
        RecordError: entries that are not manifest entries (a tampered record).
    """
    cwd = segment.get("cwd")
    entries = list((segment.get("data") or {}).get("files") or [])
    if kind == "eval":
        entries += list(segment.get("checkpoints") or [])
    validated = (segment.get("outputs") or {}).get("validated_checkpoint")
    entries += [validated] if validated else []
    keys = {"path": str, "size": int, "hash_method": str, "hash": str}
    bad = [e for e in entries if not isinstance(e, dict)
           or not all(isinstance(e.get(k), t) for k, t in keys.items())]  # fmt: skip
    if bad:
        raise RecordError(f"manifest entry {str(bad[0])[:80]}: needs {list(keys)} of types "
                          f"{[t.__name__ for t in keys.values()]}")  # fmt: skip
    return [{**e, "path": _at(cwd, e["path"])} for e in entries]


def resolved_root(segment: dict[str, Any]) -> str:
    """The recorded config's ``data.root`` resolved against the recorded working directory."""
    return _at(segment.get("cwd"), str(segment["config"]["data"]["root"]))


def replay_segment(run_dir: str | os.PathLike, out: str | os.PathLike) -> tuple[str, dict]:
    """(kind, last completed segment) of ``run_dir``'s record for a replay into ``out``,
    after checking that ``out`` is fresh or empty (``<run_dir>/replay`` may hold an earlier
    replay; never the run itself or another run) and the inputs the replay reads are
    unchanged (:func:`replay_inputs`, :func:`~mri_recon.runinfo.hashing.check_manifest`).

    Raises:
        RecordError: a used ``out``, no usable record, or a malformed one (missing keys,
            wrong types: one line naming the file).
        ValueError: an input file missing or changed.
    """
    from mri_recon.runinfo.hashing import check_manifest

    run_dir, out = Path(run_dir), Path(out)
    if out != run_dir / "replay" and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RecordError(f"--out: {out}: not empty; a replay writes into a fresh or empty "
                          "folder only (never into a run)")  # fmt: skip
    record = read_record(run_dir)
    segment = last_completed(record, str(run_dir / RECORD_NAME))
    check_manifest(replay_inputs(record["kind"], segment))
    return record["kind"], segment
