"""scripts/paired_table.py: runs joined by label, pairing against the reference, counts
against zero-filled, one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path


def _run(folder: Path, rows: list[tuple[str, str, float, float, float]]) -> Path:
    """An evaluation directory with per_volume.csv rows (method, fname, ssim, psnr, nmse)."""
    folder.mkdir()
    with open(folder / "per_volume.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fname", "acquisition", "method", "acceleration", "ssim", "psnr", "nmse",
                    "seconds_per_slice"])  # fmt: skip
        for method, fname, ssim, psnr, nmse in rows:
            w.writerow([fname, "PD", method, 4.0, ssim, psnr, nmse, 0.5])
    return folder


def test_rows_pair_against_the_reference_and_count_against_zero_filled(
    tmp_path, script_module, capsys
) -> None:
    a = _run(tmp_path / "a", [
        ("zero_filled", "f1", 0.5, 20.0, 0.10), ("zero_filled", "f2", 0.6, 22.0, 0.08),
        ("tv", "f1", 0.6, 21.0, 0.09), ("tv", "f2", 0.7, 21.0, 0.09),
    ])  # fmt: skip
    b = _run(tmp_path / "b", [
        ("zero_filled", "f1", 0.9, 90.0, 0.01), ("zero_filled", "f2", 0.9, 90.0, 0.01),
        ("tv", "f1", 0.8, 23.0, 0.05), ("tv", "f2", 0.9, 24.0, 0.04),
    ])  # fmt: skip
    table = script_module("paired_table")
    assert table.main(["--run", f"acs={a}", "--run", f"esp={b}", "--reference", "tv@acs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {
        r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    }
    assert list(rows) == ["zero_filled", "tv@acs", "tv@esp"]  # b's zero-filled left out
    assert rows["zero_filled"][1] == "0.5500"  # run a's, not b's
    # tv@esp - tv@acs: +0.2 SSIM on both volumes, +2 and +3 dB
    assert rows["tv@esp"][5].startswith("+0.2000 [+0.2000, +0.2000]")
    assert rows["tv@esp"][6].startswith("+2.50 [+2.00, +3.00]")
    assert rows["tv@acs"][5] == "-"
    # against a's zero-filled: tv@acs beats it in PSNR on f1 only, in NMSE on f1 only
    assert rows["tv@acs"][7] == "1 / 1 of 2" and rows["tv@esp"][7] == "2 / 2 of 2"


def test_bad_arguments_are_one_line(tmp_path, script_module, capsys) -> None:
    table = script_module("paired_table")
    a = _run(tmp_path / "a", [("tv", "f1", 0.6, 21.0, 0.09)])
    assert table.main(["--run", str(a), "--reference", "tv@a"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"paired_table: error: --run: must be LABEL=DIR, got {str(a)!r}"
    )
    assert table.main(["--run", f"a={a}", "--reference", "cg@a"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("paired_table: error: --reference: 'cg@a' is not one of")
        and err.count("\n") == 1
    )
