"""The data checker: one verdict per file, reasons that name the key, fastMRI folder rules."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mri_recon.data.checker import (
    CheckResult,
    check_directory,
    check_file,
    find_volumes,
    iter_check_directory,
    summary_line,
)
from mri_recon.data.fastmri import DataError


@pytest.fixture
def mixed_root(tmp_path: Path, fastmri_split, fastmri_volume) -> dict[str, Path]:
    """A data root with good single-/multi-coil/test volumes and a few bad ones."""
    good = fastmri_split(tmp_path, "singlecoil", "train", widths=(36, 40))
    multi = fastmri_split(tmp_path, "multicoil", "val", widths=(38,), num_coils=2)
    test = fastmri_split(tmp_path, "multicoil", "test", widths=(36,), num_coils=2)
    nan = fastmri_volume(tmp_path / "singlecoil_val" / "nan.h5", num_slices=3)
    with h5py.File(nan, "a") as hf:
        hf["kspace"][1, 0, 0] = np.nan
    no_target = fastmri_volume(tmp_path / "singlecoil_train" / "notarget.h5", test_file=True)
    junk = tmp_path / "other" / "junk.h5"
    junk.parent.mkdir()
    junk.write_bytes(b"\x00" * 64)
    (tmp_path / "singlecoil_train" / "._file1000001.h5").write_bytes(b"AppleDouble")
    (tmp_path / "README.txt").write_text("not a volume")
    return {
        "good0": good[0],
        "good1": good[1],
        "multi": multi[0],
        "test": test[0],
        "nan": nan,
        "no_target": no_target,
        "junk": junk,
    }


def test_check_directory_reports_each_file(mixed_root):
    results = check_directory(mixed_root["good0"].parents[1])
    by_path = {r.path: r for r in results}
    assert [r.path for r in results] == sorted(mixed_root.values())
    for key in ("good0", "good1", "multi", "test"):
        assert by_path[mixed_root[key]].ok and by_path[mixed_root[key]].reason == ""
    assert by_path[mixed_root["test"]].info.is_test
    reasons = {key: by_path[mixed_root[key]].reason for key in ("nan", "junk")}
    assert reasons["nan"] == "kspace has NaN or Inf values (first in slice 1)"
    # a training file without target is OK for self-supervised training only, and says so
    assert by_path[mixed_root["no_target"]].line() == (
        f"OK {mixed_root['no_target']} (no target: trains with training=ssdu only)"
    )
    assert reasons["junk"].startswith("not a readable HDF5 file (file signature not found")
    assert summary_line(results) == "checked 7 files: 5 OK, 2 BAD"
    assert by_path[mixed_root["nan"]].line() == (
        f"BAD {mixed_root['nan']}: kspace has NaN or Inf values (first in slice 1)"
    )
    assert by_path[mixed_root["good0"]].line() == f"OK {mixed_root['good0']}"


def test_a_validation_file_needs_its_target(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "singlecoil_val" / "notarget.h5", test_file=True)
    result = check_file(path)
    assert result.reason == "no target 'reconstruction_esc' (required in the val split)"


def test_headers_only_skips_the_full_read(mixed_root):
    assert check_file(mixed_root["nan"], full=False).ok
    assert not check_file(mixed_root["nan"], full=True).ok


def test_file_without_target_outside_a_split_folder_is_a_test_file(tmp_path, fastmri_volume):
    with_mask = fastmri_volume(tmp_path / "loose" / "a.h5", test_file=True)
    result = check_file(with_mask)
    assert result.ok and result.info.is_test
    without = fastmri_volume(tmp_path / "loose" / "b.h5")
    with h5py.File(without, "a") as hf:
        del hf["reconstruction_esc"]
    assert "nor a 'mask' dataset" in check_file(without).reason


def test_rank_must_match_the_split_folder_challenge(tmp_path, fastmri_volume):
    path = fastmri_volume(tmp_path / "multicoil_val" / "single.h5", challenge="singlecoil")
    result = check_file(path)
    assert not result.ok and "is singlecoil, but the challenge is multicoil" in result.reason


def test_warnings_are_shown_on_ok_lines(tmp_path, fastmri_volume):
    path = fastmri_volume(
        tmp_path / "w.h5", encoded_size=(64, 40, 1), padding_right=36, attrs={"max": None}
    )
    result = check_file(path)
    assert result.ok and len(result.warnings) == 2
    assert result.line().startswith(f"OK {path} (warning: ismrmrd_header encoded y = 40")
    assert "no attr 'max'" in result.line()


def test_unexpected_errors_become_bad_results(tmp_path, fastmri_volume, monkeypatch):
    path = fastmri_volume(tmp_path / "x.h5")

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr("mri_recon.data.checker.scan_volume", boom)
    result = check_file(path)
    assert not result.ok and result.reason == "unexpected RuntimeError: disk on fire second line"


def test_find_volumes_errors_and_single_file(tmp_path, fastmri_volume):
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        find_volumes(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no .h5 files under this directory"):
        list(iter_check_directory(tmp_path / "empty"))
    path = fastmri_volume(tmp_path / "one.h5")
    assert find_volumes(path) == [path]
    assert isinstance(check_directory(path)[0], CheckResult)
