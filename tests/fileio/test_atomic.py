"""mri_recon.fileio: atomic writes whose files and folders get the umask's permissions (not
mkstemp's 0600 / mkdtemp's 0700), and nothing left under the final name on failure."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mri_recon.fileio import (
    atomic_path,
    make_temp_dir,
    read_csv,
    umask_mode,
    write_atomic,
    write_csv,
)


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_modes_follow_the_umask(tmp_path, umask) -> None:
    assert umask_mode() == 0o666 & ~umask and umask_mode(directory=True) == 0o777 & ~umask
    text = write_atomic(tmp_path / "a" / "report.md", "héllo\n")
    assert text.read_text(encoding="utf-8") == "héllo\n" and _mode(text) == 0o666 & ~umask
    data = write_atomic(tmp_path / "blob.bin", b"\x00\x01")
    assert data.read_bytes() == b"\x00\x01" and _mode(data) == 0o666 & ~umask
    folder = make_temp_dir(tmp_path, prefix=".split.", suffix=".partial")
    assert folder.name.startswith(".split.") and _mode(folder) == 0o777 & ~umask
    # the same as a plain open() / mkdir() under this umask
    (tmp_path / "plain.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    assert _mode(text) == _mode(tmp_path / "plain.txt") and _mode(folder) == _mode(
        tmp_path / "plain"
    )


def test_failure_leaves_neither_file_nor_temporary(tmp_path) -> None:
    target = tmp_path / "vol.h5"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        assert tmp.parent == tmp_path and tmp.name.startswith(".vol.h5.") and tmp.suffix == ".tmp"
        raise RuntimeError("crash")
    assert target.read_text() == "old"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.h5"]


def test_csv_writer_is_strict_and_keeps_full_precision(tmp_path) -> None:
    rows = [{"x": 0.1 + 0.2, "y": None, "extra": 1}, {"x": float("nan"), "y": "s"}]
    path = write_csv(tmp_path / "a.csv", rows, ["x", "y"])
    assert path.read_text() == "x,y\n0.30000000000000004,\n,s\n"
    with pytest.raises(ValueError, match="b.csv: .* lacks columns \\['y'\\]"):
        write_csv(tmp_path / "b.csv", [{"x": 1}], ["x", "y"])
    assert sorted(tmp_path.iterdir()) == [path]


def test_csv_reader_round_trips_the_writer(tmp_path) -> None:
    rows = [
        {"name": "a", "x": 0.1 + 0.2, "n": 3, "y": None},
        {"name": "", "x": float("nan"), "n": None, "y": 1e-300},
    ]
    path = write_csv(tmp_path / "a.csv", rows, ["name", "x", "n", "y"])
    back = read_csv(path, {"x": float, "n": int, "y": float})
    assert back[0] == {"name": "a", "x": 0.1 + 0.2, "n": 3, "y": None}
    assert back[1] == {"name": "", "x": None, "n": None, "y": 1e-300}  # NaN was written empty
    assert list(back[0]) == ["name", "x", "n", "y"]
    assert read_csv(path)[0]["x"] == "0.30000000000000004"  # untyped cells stay strings


def test_every_writer_gives_readable_outputs(tmp_path, umask, fastmri_split) -> None:
    """The data writer, the evaluation's CSV/JSON/HDF5 writers and the figure saver."""
    from matplotlib.figure import Figure

    from mri_recon.evaluation.outputs import write_json, write_reconstruction
    from mri_recon.viz.figures import save_figure

    (volume,) = fastmri_split(tmp_path / "data", "singlecoil", "val", widths=(36,))
    written = [
        volume,
        write_csv(tmp_path / "out" / "rows.csv", [{"a": 1}], ["a"]),
        write_json(tmp_path / "out" / "s.json", {"a": 1}),
        write_reconstruction(tmp_path / "out" / "r.h5", np.zeros((1, 4, 4), np.float32)),
        save_figure(Figure(), tmp_path / "out" / "f.png"),
    ]
    for path in written:
        assert _mode(path) == 0o666 & ~umask, path
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_synthetic_dataset_folders_and_files_are_readable(tmp_path) -> None:
    from mri_recon.data.synthetic import generate_dataset

    old = os.umask(0o022)
    try:
        generate_dataset(tmp_path, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    finally:
        os.umask(old)
    folders = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folders and all(_mode(p) == 0o755 for p in folders)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files) and any(p.suffix == ".h5" for p in files)
    assert all(_mode(p) == 0o644 for p in files)
