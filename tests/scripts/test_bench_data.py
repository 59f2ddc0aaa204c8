"""scripts/bench_data.py on a tiny split: one table row per challenge, one-line errors."""

from __future__ import annotations

import pytest

# the scripts set torch's thread count; the fixture restores it after this module
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_table_has_a_row_per_challenge_path_and_workers(
    tmp_path, fastmri_split, capsys, script_module
):
    fastmri_split(tmp_path, "multicoil", "val", widths=(36, 40), num_slices=2, num_coils=2)
    bench = script_module("bench_data")
    assert bench.main(["--root", str(tmp_path), "--repeats", "1", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[1] == "| " + " | ".join(bench.HEADER) + " |" and err == ""
    # caption, header, rule, (read, read+zf) x (0, 1 workers): singlecoil_val/ is absent
    assert len(lines) == 7
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[3:]]
    assert [r[:4] for r in rows] == [
        ["multicoil", path, workers, "4"] for path in ("read", "read+zf") for workers in "01"
    ]
    for cells in rows:
        ours, theirs, ratio = float(cells[4]), float(cells[5]), float(cells[6].rstrip("x"))
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
