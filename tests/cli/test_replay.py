"""``mri-recon-replay``: inputs checked against the record first, then the evaluation (or a
training run's final validation) re-run and its table diffed; one-line errors for a missing
or newer record and a changed data file."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from mri_recon.cli.evaluate import main as eval_main
from mri_recon.cli.replay import DIFFERS_EXIT, main
from mri_recon.runinfo.compare import TOLERANCES

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


@pytest.fixture
def eval_run(tiny_data, tmp_path) -> Path:
    """A zero-filled evaluation of a private copy of the tiny val split."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data / "singlecoil_val", data / "singlecoil_val")
    run_dir = tmp_path / "eval"
    eval_main(
        [
            f"data.root={data}",
            "methods=[zero_filled]",
            "num_figures=0",
            "progress=false",
            f"hydra.run.dir={run_dir}",
        ]
    )
    return run_dir


def _replay(capsys, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_of_a_record_made_before_the_evaluation_node(eval_run, tmp_path, capsys) -> None:
    record = json.loads((eval_run / "provenance.json").read_text())
    del record["segments"][-1]["config"]["evaluation"]
    (eval_run / "provenance.json").write_text(json.dumps(record))
    code, out, _ = _replay(capsys, eval_run, "--out", tmp_path / "again")
    assert code == 0 and "replay: identical to the record (2 rows" in out
    replayed = json.loads((tmp_path / "again" / "provenance.json").read_text())
    assert replayed["segments"][0]["masks"]["mask_name"] == "random_4x"


def _edit_csv(path: Path, column: str, delta: float) -> None:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[-1][column] = repr(float(rows[-1][column]) + delta)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_replay_of_an_evaluation_is_identical(eval_run, tmp_path, capsys) -> None:
    capsys.readouterr()
    code, out, _ = _replay(capsys, eval_run, "--out", tmp_path / "again")
    assert code == 0 and "replay: identical to the record (2 rows" in out
    assert (tmp_path / "again" / "per_volume.csv").is_file()
    replayed = json.loads((tmp_path / "again" / "provenance.json").read_text())
    assert replayed["segments"][0]["masks"]["mask_name"] == "random_4x"  # Hydra's choice kept
    # timings are not compared
    _edit_csv(eval_run / "per_volume.csv", "seconds_per_slice", 1.0)
    code, out, _ = _replay(capsys, eval_run)
    assert code == 0 and "identical" in out and (eval_run / "replay" / "per_volume.csv").is_file()


def test_replay_reports_the_largest_difference_against_the_tolerance(eval_run, capsys) -> None:
    _edit_csv(eval_run / "per_volume.csv", "ssim", TOLERANCES["ssim"] / 2)
    code, out, _ = _replay(capsys, eval_run)
    assert code == 0, out
    assert "largest |d ssim| = 5e-05 (file" in out and "past tolerance" not in out
    _edit_csv(eval_run / "per_volume.csv", "psnr", 3 * TOLERANCES["psnr"])
    code, out, err = _replay(capsys, eval_run)
    assert code == DIFFERS_EXIT
    assert "largest |d psnr| = 0.03 (" in out and "<- past tolerance" in out
    assert err.count("\n") == 1 and "differs from the record past the tolerance" in err


def test_a_changed_data_file_stops_the_replay_first(eval_run, capsys) -> None:
    record = json.loads((eval_run / "provenance.json").read_text())
    path = Path(record["segments"][0]["data"]["files"][1]["path"])
    with h5py.File(path, "r+") as hf:  # an attribute only: same size on disk
        hf.attrs["max"] = hf.attrs["max"] * 1.0001
    code, out, err = _replay(capsys, eval_run)
    assert code == 1 and out == ""
    assert err == f"error: {path}: changed since the run (sha256 " + err.split("(sha256 ")[1]
    assert err.count("\n") == 1 and not (eval_run / "replay").exists()
    path.unlink()
    code, _, err = _replay(capsys, eval_run)
    assert code == 1 and err.startswith(f"error: {path}: missing")


def test_no_record_or_a_newer_one_is_a_one_line_error(tmp_path, capsys) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mri_recon.cli.replay", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {tmp_path}/provenance.json: no run record " + (
        "(not a run directory of mri-recon-train/eval)\n"
    )
    (tmp_path / "provenance.json").write_text(
        json.dumps({"format_version": 2, "kind": "eval", "segments": []})
    )
    code, _, err = _replay(capsys, tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "format_version 2 is newer than this mri_recon reads (1)" in err


def test_replay_of_a_training_run_revalidates_its_checkpoint(
    tiny_data, train_run, tmp_path, capsys
) -> None:
    run_dir = tmp_path / "train"
    train_run(tiny_data, run_dir, "trainer.max_epochs=1")
    capsys.readouterr()
    code, out, _ = _replay(capsys, run_dir, "--out", tmp_path / "again")
    assert code == 0 and "replay: identical to the record (2 rows" in out, out
    assert (tmp_path / "again" / "val_volumes.csv").is_file()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"retrained")
    code, _, err = _replay(capsys, run_dir)
    assert code == 1 and "last.ckpt: changed since the run" in err
