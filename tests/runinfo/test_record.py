"""The append-only run record: segments append, the last one is rewritten in place, and a
missing, unreadable or newer record is a one-line RecordError naming the file."""

from __future__ import annotations

import json

import pytest

from mri_recon.runinfo import (
    FORMAT_VERSION,
    RecordError,
    append_segment,
    last_completed,
    read_record,
    replace_last_segment,
)


def test_segments_append_and_the_last_is_completed_in_place(tmp_path) -> None:
    append_segment(tmp_path, "train", {"status": "running", "n": 1})
    replace_last_segment(tmp_path, {"status": "completed", "n": 1})
    append_segment(tmp_path, "train", {"status": "running", "n": 2})  # a resume
    record = read_record(tmp_path)
    assert record["format_version"] == FORMAT_VERSION and record["kind"] == "train"
    assert [s["n"] for s in record["segments"]] == [1, 2]
    assert last_completed(record)["n"] == 1
    replace_last_segment(tmp_path, {"status": "completed", "n": 2})
    assert last_completed(read_record(tmp_path))["n"] == 2
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave nothing behind


def test_a_record_of_another_kind_is_kept_aside(tmp_path) -> None:
    append_segment(tmp_path, "eval", {"status": "completed"})
    append_segment(tmp_path, "train", {"status": "running"})
    assert read_record(tmp_path)["kind"] == "train"
    assert json.loads((tmp_path / "provenance.json.bak").read_text())["kind"] == "eval"


@pytest.mark.parametrize(
    "content,message",
    [
        (None, r"provenance\.json: no run record"),
        ("{not json", r"provenance\.json: unreadable run record"),
        ('{"kind": "eval", "segments": []}', r"format_version: missing"),
        (
            '{"format_version": 99, "kind": "eval", "segments": []}',
            r"format_version 99 is newer than this mri_recon reads \(1\)",
        ),
        ('{"format_version": 1, "kind": "x", "segments": []}', r"kind must be one of"),
    ],
)
def test_bad_records_are_one_line_errors(tmp_path, content, message) -> None:
    if content is not None:
        (tmp_path / "provenance.json").write_text(content)
    with pytest.raises(RecordError, match=message) as err:
        read_record(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_no_completed_segment(tmp_path) -> None:
    append_segment(tmp_path, "train", {"status": "running"})
    with pytest.raises(RecordError, match="no completed segment"):
        last_completed(read_record(tmp_path))
