"""``mri-recon-data``: exit codes and output of ``check``; argument plumbing of ``synth``."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_recon.cli.data import main


@pytest.fixture
def good_root(tmp_path: Path, fastmri_split) -> Path:
    fastmri_split(tmp_path, "singlecoil", "train", widths=(36, 40))
    fastmri_split(tmp_path, "multicoil", "test", widths=(38,), num_coils=2)
    return tmp_path


def test_check_good_directory_exits_0(good_root, capsys):
    assert main(["check", str(good_root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.startswith("OK ") for line in lines[:3])
    assert lines[-1] == "checked 3 files: 3 OK, 0 BAD"


def test_check_with_bad_files_exits_1(good_root, fastmri_volume, capsys):
    bad = fastmri_volume(good_root / "singlecoil_train" / "zz_nan.h5")
    with h5py.File(bad, "a") as hf:
        hf["reconstruction_esc"][0, 1, 1] = np.inf
    trunc = fastmri_volume(good_root / "singlecoil_train" / "zz_trunc.h5")
    trunc.write_bytes(trunc.read_bytes()[:800])
    assert main(["check", str(good_root)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and lines[-1] == "checked 5 files: 3 OK, 2 BAD"
    assert f"BAD {bad}: reconstruction_esc has NaN or Inf values (first in slice 0)" in lines
    assert any(line.startswith(f"BAD {trunc}: not a readable HDF5 file (") for line in lines)
    assert main(["check", "--quiet", str(good_root)]) == 1
    quiet = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in quiet[:-1]] == [f"BAD {bad}", f"BAD {trunc}"]
    assert main(["check", "--headers-only", str(bad)]) == 0


def test_check_usage_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"mri-recon-data check: error: {tmp_path / 'nope'}: no such file or directory\n"
    assert main(["check", str(tmp_path)]) == 1  # exists, but holds no volume
    assert "no .h5 files under this directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2


def test_synth_passes_its_arguments(tmp_path, monkeypatch, fastmri_volume, capsys):
    calls = []

    def generate_dataset(out, preset, challenge, seed, progress):
        calls.append((Path(out), preset, challenge, seed, progress))
        fastmri_volume(Path(out) / "singlecoil_train" / "file1.h5")

    fake = types.ModuleType("mri_recon.data.synthetic")
    fake.generate_dataset = generate_dataset
    monkeypatch.setitem(sys.modules, "mri_recon.data.synthetic", fake)
    out = tmp_path / "data"
    argv = [
        "synth",
        "--out",
        str(out),
        "--preset",
        "large",
        "--challenge",
        "multicoil",
        "--seed",
        "7",
    ]
    assert main(argv) == 0
    assert calls == [(out, "large", "multicoil", 7, True)]
    assert capsys.readouterr().out.strip() == f"wrote 1 .h5 files under {out}"
    assert main(["synth", "--out", str(out)]) == 0
    assert calls[-1] == (out, "default", "both", 0, True)
    with pytest.raises(SystemExit) as excinfo:
        main(["synth", "--out", str(out), "--preset", "huge"])
    assert excinfo.value.code == 2


def test_console_script_runs_in_a_subprocess(good_root, fastmri_volume):
    bad = fastmri_volume(
        good_root / "multicoil_test" / "nomask.h5",
        challenge="multicoil",
        num_coils=2,
        test_file=True,
    )
    with h5py.File(bad, "a") as hf:
        del hf["mask"]
    script = Path(sys.executable).parent / "mri-recon-data"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mri_recon.cli.data"]
    proc = subprocess.run(
        [*cmd, "check", str(good_root)], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "checked 4 files: 3 OK, 1 BAD"
    assert lines[1].startswith(
        f"BAD {bad}: neither a target 'reconstruction_rss' nor a 'mask' dataset"
    )


def test_synth_accepts_every_preset_and_names_the_overwrite_flag(tmp_path, capsys):
    from mri_recon.cli.data import PRESETS
    from mri_recon.data.synthetic import PRESETS as SYNTH_PRESETS

    assert sorted(PRESETS) == sorted(SYNTH_PRESETS)
    out = tmp_path / "data"
    argv = ["synth", "--out", str(out), "--preset", "tiny", "--challenge", "singlecoil"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"wrote 5 .h5 files under {out}"
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "already holds .h5 volumes; replace them with --overwrite" in err
    assert main([*argv, "--overwrite"]) == 0


def test_check_follows_symlinked_splits_and_reports_dangling_links(good_root, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere" / "singlecoil_val"
    elsewhere.mkdir(parents=True)
    moved = good_root / "singlecoil_train" / "file1000002.h5"
    moved.rename(elsewhere / moved.name)
    root = tmp_path / "root"
    root.mkdir()
    (root / "singlecoil_val").symlink_to(elsewhere)  # as train and eval follow it
    (root / "singlecoil_val" / "loop").symlink_to(root)  # a loop is listed once
    gone = root / "singlecoil_val" / "gone.h5"
    gone.symlink_to(tmp_path / "missing.h5")
    assert main(["check", str(root)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"OK {root / 'singlecoil_val' / moved.name}",
        f"BAD {gone}: dangling symlink (to {tmp_path / 'missing.h5'})",
        "checked 2 files: 1 OK, 1 BAD",
    ]
    from mri_recon.data.fastmri import DataError, list_volumes

    with pytest.raises(DataError, match=r"gone.h5: dangling symlink \(to .*missing.h5\)"):
        list_volumes(root, "singlecoil", "val")


def test_check_into_a_closed_pipe_ends_quietly(good_root, tmp_path):
    """``mri-recon-data check DIR | head -3``: the reader goes away before the output ends."""
    script = Path(sys.executable).parent / "mri-recon-data"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mri_recon.cli.data"]
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen([*cmd, "check", str(good_root)], stdout=subprocess.PIPE, stderr=err)
        proc.stdout.close()  # closed before the first line is written: every write fails
        code = proc.wait(timeout=120)
    assert (tmp_path / "stderr").read_text() == "" and code == 1
