"""Issue 21 through the command lines: a cached verdict never hides bad data, a failed
command never rewrites a finished run."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_recon.data.prescan import scan_volume

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")

TINY_TRAIN = [
    "debug=fast",
    "logger=none",
    "model.chans=4",
    "model.num_pool_layers=2",
    "trainer.max_epochs=1",
]


def _stderr_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_an_in_place_edit_with_mtime_restored_stops_check_eval_tune_and_train(
    tmp_path, fastmri_split, capsys
):
    from mri_recon.cli import data as data_cli
    from mri_recon.cli import evaluate as eval_cli
    from mri_recon.cli import train as train_cli
    from mri_recon.cli import tune_tv as tune_cli

    root = tmp_path / "data"
    fastmri_split(root, split="train", widths=(36, 40), num_slices=2)
    val = fastmri_split(root, split="val", widths=(36, 40), num_slices=3)
    for path in sorted(root.rglob("*.h5")):
        scan_volume(path)  # every command's clean verdict is cached
    stat = val[1].stat()
    with h5py.File(val[1], "r+") as hf:  # bit rot: same size, mtime put back
        hf["kspace"][2, 4, 5] = np.nan
    os.utime(val[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert val[1].stat().st_size == stat.st_size
    reason = f"{val[1]}: kspace has NaN or Inf values (first in slice 2)"

    assert data_cli.main(["check", str(root / "singlecoil_val")]) == 1
    assert f"BAD {reason}" in capsys.readouterr().out
    common = [f"data.root={root}", "data.challenge=singlecoil"]
    commands = {
        "eval": (eval_cli.main, ["methods=[zero_filled]"]),
        "tune": (tune_cli.main, ["lams=[0.01]"]),
        "train": (train_cli.main, TINY_TRAIN),
    }
    for name, (main, extra) in commands.items():
        run_dir = tmp_path / f"run_{name}"
        with pytest.raises(SystemExit) as exc:
            main([*common, *extra, f"hydra.run.dir={run_dir}"])
        assert exc.value.code == 1, name
        assert _stderr_line(capsys) == f"error: {reason}", name
        assert not run_dir.exists(), name  # a failed run leaves no run directory behind


FAULTS = Path(__file__).resolve().parents[1] / "faults"  # sitecustomize: kill before a replace


def _killed_before_replace(argv: list[str], text: str, n: int = 1, cwd: Path | None = None):
    """Run ``python -m <argv>`` killed just before the n-th os.replace onto a path with ``text``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(FAULTS), env.get("PYTHONPATH", "")])
    env["MRI_RECON_KILL_BEFORE_REPLACE"] = f"{text}:{n}"
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run(
        [sys.executable, "-m", *argv], capture_output=True, text=True, env=env, cwd=cwd,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return done


@pytest.fixture
def logging_restored():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], root.level = saved


def _tree_hash(path: Path) -> dict[str, str]:
    """Every file below ``path`` (relative name -> sha256 of its bytes)."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _with_bad_file(tiny_data: Path, dest: Path) -> Path:
    """A copy of ``tiny_data`` whose first validation file has a NaN in slice 1."""
    shutil.copytree(tiny_data, dest)
    bad = sorted((dest / "singlecoil_val").glob("*.h5"))[0]
    with h5py.File(bad, "r+") as hf:
        hf["kspace"][1, 3, 3] = np.nan
    return bad


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished one-epoch training run made by the CLI, and its overrides."""
    from mri_recon.cli.train import main

    overrides = [*TINY_TRAIN, "trainer.limit_train_batches=2", f"data.root={tiny_data}"]
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        main([*overrides, f"hydra.run.dir={run_dir}"])
    finally:
        root.handlers[:], root.level = saved
    return run_dir, overrides


def test_a_failed_resume_leaves_every_file_of_the_run_byte_identical(
    finished, tiny_data, tmp_path, capsys, logging_restored, monkeypatch
):
    """Issue 21 item 2: ``ckpt_path=RUN/... data.root=OTHER`` with a bad file in OTHER fails
    with one line and leaves RUN (its .hydra/overrides.yaml, the next resume's config, and
    its log) as it was."""
    from mri_recon.cli import errors
    from mri_recon.cli.train import main

    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    bad = _with_bad_file(tiny_data, tmp_path / "other")
    before = _tree_hash(run_dir)
    args = [f"ckpt_path={run_dir}/checkpoints/last.ckpt", f"data.root={tmp_path / 'other'}"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 1
    assert _stderr_line(capsys) == (
        f"error: {bad}: kspace has NaN or Inf values (first in slice 1)"
    )
    assert _tree_hash(run_dir) == before
    # the data is checked before Hydra writes at all, not undone afterwards (a kill during
    # the checks cannot leave a rewritten .hydra/): without the undo the run is untouched too
    monkeypatch.setattr(errors, "restored_on_failure", lambda *a, **k: contextlib.nullcontext())
    with pytest.raises(SystemExit):
        main(args)
    assert _tree_hash(run_dir) == before


def test_refused_reruns_leave_the_finished_directory_byte_identical(
    tiny_data, tmp_path, capsys, logging_restored
):
    """eval into its finished directory on bad data, the grid with other settings: refused,
    every file as it was; a failed run into a new directory leaves none behind."""
    from mri_recon.cli import evaluate as eval_cli
    from mri_recon.cli import robustness as grid_cli

    _with_bad_file(tiny_data, tmp_path / "other")
    base = ["methods=[zero_filled]", "data.max_volumes=1", "progress=false", "num_figures=0"]
    grid = ["grid.masks=[random]", "grid.accelerations=[4]"]
    for main, extra in ((eval_cli.main, []), (grid_cli.main, grid)):
        out = tmp_path / main.__module__.rpartition(".")[2]
        main([f"data.root={tiny_data}", *base, *extra, f"hydra.run.dir={out}"])
        capsys.readouterr()
        before = _tree_hash(out)
        for again in ([f"data.root={tmp_path / 'other'}"], ["data.max_volumes=2"]):
            if main is eval_cli.main and again == ["data.max_volumes=2"]:
                continue  # eval may rerun with other settings: it replaces its outputs
            with pytest.raises(SystemExit) as exc:
                main([f"data.root={tiny_data}", *base, *extra, *again, f"hydra.run.dir={out}"])
            assert exc.value.code == 1, (main, again)
            _stderr_line(capsys)
            assert _tree_hash(out) == before, (main, again)
    new = tmp_path / "new"
    with pytest.raises(SystemExit):
        eval_cli.main([f"data.root={tmp_path / 'other'}", *base, f"hydra.run.dir={new}"])
    assert not new.exists()


def test_resume_after_a_kill_in_the_final_writes_equals_the_uninterrupted_run(
    finished, tmp_path, logging_restored
):
    """Issue 21 item 7: metrics.json of the resumed run has train/loss and train/loss_epoch,
    equal to the uninterrupted run's."""
    from mri_recon.cli.train import main

    straight, overrides = finished
    killed = tmp_path / "killed"
    _killed_before_replace(
        ["mri_recon.cli.train", *overrides, f"hydra.run.dir={killed}"], "metrics.json"
    )
    assert (killed / "checkpoints" / "last.ckpt").is_file()
    assert not (killed / "metrics.json").exists()
    main([f"ckpt_path={killed}/checkpoints/last.ckpt"])
    expected = json.loads((straight / "metrics.json").read_text())["metrics"]
    got = json.loads((killed / "metrics.json").read_text())["metrics"]
    assert {"train/loss", "train/loss_epoch"} <= set(expected)
    assert got == expected


def test_a_kill_while_the_record_is_written_publishes_neither(tiny_data, tmp_path, capsys):
    """Issue 21 item 5: provenance.json is published with the outputs it describes, as one
    set: an evaluation killed while writing it leaves the previous outputs and record."""
    from mri_recon.cli import evaluate as eval_cli
    from mri_recon.fileio import read_csv
    from mri_recon.runinfo import last_completed, read_record

    out = tmp_path / "eval"
    base = [f"data.root={tiny_data}", "methods=[zero_filled]", "progress=false",
            "num_figures=0", f"hydra.run.dir={out}"]  # fmt: skip
    eval_cli.main([*base, "data.max_volumes=1"])
    capsys.readouterr()
    _killed_before_replace(["mri_recon.cli.evaluate", *base, "data.max_volumes=2"],
                           "provenance.json")  # fmt: skip
    scored = {row["fname"] for row in read_csv(out / "per_volume.csv")}
    segment = last_completed(read_record(out))
    recorded = {Path(f["path"]).name for f in segment["data"]["files"]}
    assert scored == recorded and len(scored) == 1


def _replay_code(*args) -> int:
    from mri_recon.cli.replay import main

    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code
    return 0


def test_replay_refuses_a_used_out_and_resolves_a_relative_root(
    tiny_data, tmp_path, capsys, monkeypatch
):
    """Issue 21 item 3: an edited table is never reported identical, whatever --out is
    (the record's own directory and another run are refused, untouched); a relative
    data.root is the recorded working directory's."""
    from mri_recon.cli import evaluate as eval_cli

    shutil.copytree(tiny_data / "singlecoil_val", tmp_path / "data" / "singlecoil_val")
    monkeypatch.chdir(tmp_path)
    runs = {}
    for name in ("a", "b"):
        runs[name] = tmp_path / name
        eval_cli.main(["data.root=data", "methods=[zero_filled]", "data.max_volumes=1",
                       "progress=false", "num_figures=0", f"hydra.run.dir={runs[name]}"])  # fmt: skip
    table = runs["a"] / "per_volume.csv"
    table.write_text(table.read_text().replace(",zero_filled,", ",edited,", 1))
    monkeypatch.chdir(tmp_path / "data")  # the caller's cwd is not the recorded one
    capsys.readouterr()
    for out in (runs["a"], runs["b"]):
        before = _tree_hash(out)
        assert _replay_code(runs["a"], "--out", out) == 2
        assert "--out: " in _stderr_line(capsys)
        assert _tree_hash(out) == before
    assert _replay_code(runs["b"], "--out", tmp_path / "fresh") == 0
    assert _replay_code(runs["a"], "--out", tmp_path / "fresh2") == 3


def test_replay_of_a_resumed_training_run(finished, tmp_path, capsys, logging_restored):
    """The resume overwrote the last.ckpt it started from: replay checks what the final
    validation read (the validated checkpoint), and reproduces."""
    from mri_recon.cli.train import main

    run_dir = tmp_path / "run"
    shutil.copytree(finished[0], run_dir)
    main([f"ckpt_path={run_dir}/checkpoints/last.ckpt", "trainer.max_epochs=2"])
    capsys.readouterr()
    assert _replay_code(run_dir, "--out", tmp_path / "replayed") == 0, capsys.readouterr().err


def test_disk_full_and_a_tampered_record_are_one_line(tiny_data, tmp_path, capsys, monkeypatch):
    """Issue 21 item 6: ENOSPC while publishing is one line naming the file (no traceback,
    no run directory left behind); a record with missing keys or wrong types is one line."""
    import errno

    from mri_recon.cli import evaluate as eval_cli

    out = tmp_path / "eval"
    args = [f"data.root={tiny_data}", "methods=[zero_filled]", "data.max_volumes=1",
            "progress=false", "num_figures=0", f"hydra.run.dir={out}"]  # fmt: skip
    replace = os.replace

    def full(src, dst, *a, **k):
        if str(dst).endswith("per_volume.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(SystemExit) as exc:
        eval_cli.main(args)
    assert exc.value.code == 1
    line = _stderr_line(capsys)
    assert line.startswith("error: ") and line.endswith("per_volume.csv: No space left on device")
    assert not out.exists()
    monkeypatch.setattr(os, "replace", replace)
    eval_cli.main(args)
    capsys.readouterr()
    record = json.loads((out / "provenance.json").read_text())
    for tamper in ({"status": "completed"}, {**record["segments"][0], "data": "x"}):
        (out / "provenance.json").write_text(json.dumps({**record, "segments": [tamper]}))
        assert _replay_code(out, "--out", tmp_path / "replayed") == 2
        assert _stderr_line(capsys).startswith(f"error: {out / 'provenance.json'}: malformed")
