"""scripts/bench_data.py on a tiny split: one table row per challenge, one-line errors."""

from __future__ import annotations

import pytest

# the scripts set torch's thread count; the fixture restores it after this module
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_table_has_a_row_per_present_challenge(tmp_path, fastmri_split, capsys, script_module):
    fastmri_split(tmp_path, "multicoil", "val", widths=(36, 40), num_slices=2, num_coils=2)
    bench = script_module("bench_data")
    assert bench.main(["--root", str(tmp_path), "--repeats", "1"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1].startswith("| challenge | volumes | slices | ours slices/s |") and err == ""
    assert len(lines) == 4  # caption, header, rule, one row: singlecoil_val/ is absent
    cells = [c.strip() for c in lines[3].strip("|").split("|")]
    assert cells[:3] == ["multicoil", "2", "4"]
    ours, theirs, ratio = float(cells[3]), float(cells[4]), float(cells[5].rstrip("x"))
    assert ours > 0 and theirs > 0 and abs(ratio - ours / theirs) < 0.01 + 0.01 * ratio


def test_missing_root_and_split_are_one_line_errors(tmp_path, fastmri_split, capsys, script_module):
    bench = script_module("bench_data")
    missing = tmp_path / "absent"
    assert bench.main(["--root", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bench_data: error: {missing}: data root does not exist")
    assert err.count("\n") == 1
    fastmri_split(tmp_path, "singlecoil", "val", widths=(36,))
    assert bench.main(["--root", str(tmp_path), "--challenge", "multicoil"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"bench_data: error: {tmp_path / 'multicoil_val'}: no such directory "
        "(expected multicoil_val/ under root)\n"
    )
