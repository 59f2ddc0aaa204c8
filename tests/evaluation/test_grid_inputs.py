"""Issue 21 item 4: the robustness grid's cells are keyed by what they were computed from."""

from __future__ import annotations

import os

import h5py
import pytest

from mri_recon.baselines import ZeroFilled
from mri_recon.data.fastmri import DataError
from mri_recon.evaluation import EvalSettings
from mri_recon.evaluation.grid import grid_cells, run_grid


class Counting:
    """Zero-filled, counting the volumes it reconstructs per cell (its mask name)."""

    name, needs_sens_maps = "model", False

    def __init__(self) -> None:
        self.cells: list[str] = []

    def __call__(self, masked_kspace, mask, sens_maps, crop_size):
        return ZeroFilled()(masked_kspace, mask, None, crop_size)


def _settings(root, out, split="val"):
    return EvalSettings(
        root=root,
        challenge="singlecoil",
        split=split,
        mask_name="grid",
        mask_func=None,
        run_dir=out,
        progress=False,
        num_resamples=20,
        num_figures=0,
    )


def test_a_rerun_recomputes_the_cells_whose_checkpoint_or_data_changed(
    tmp_path, fastmri_split, monkeypatch
):
    from mri_recon.evaluation import grid as grid_module

    paths = fastmri_split(tmp_path / "data", split="val", widths=(36,), num_slices=2)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"weights v1")
    evaluated: list[str] = []
    real = grid_module.run_evaluation

    def counting(settings, methods, *selection):
        evaluated.append(settings.mask_name)
        return real(settings, methods, *selection)

    monkeypatch.setattr(grid_module, "run_evaluation", counting)
    cells = grid_cells(["random", "equispaced"], [4])
    out = tmp_path / "grid"

    def run() -> list[str]:
        evaluated.clear()
        run_grid(_settings(tmp_path / "data", out), {"model": Counting()}, cells, {}, [ckpt])
        return sorted(evaluated)

    names = sorted(c.name for c in cells)
    assert run() == names
    assert run() == []  # unchanged: every cell is reused
    ckpt.write_bytes(b"weights v2")  # another model, same path
    assert run() == names
    assert run() == []
    stat = paths[0].stat()
    with h5py.File(paths[0], "r+") as hf:  # new data in place, size and mtime kept
        hf["kspace"][0, 0, 0] = 1.5 * hf["kspace"][0, 0, 0]
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run() == names


def test_two_accelerations_never_share_a_cell_name():
    cells = grid_cells(["random"], [4, 4.000001], [0.08, 0.08])
    assert len({c.name for c in cells}) == 2
    assert [c.name for c in grid_cells(["poisson"], [8])] == ["poisson_8x_cf0.04"]


def test_the_grid_refuses_files_with_stored_masks(tmp_path, fastmri_split):
    paths = fastmri_split(tmp_path / "data", split="test", widths=(36,), num_slices=2)
    out = tmp_path / "grid"
    with pytest.raises(DataError, match=r"stored mask \(test split\)") as info:
        run_grid(_settings(tmp_path / "data", out, "test"), {"zero_filled": ZeroFilled()},
                 grid_cells(["random", "poisson"], [4, 8]), {})  # fmt: skip
    assert str(info.value).startswith(str(paths[0]))
    assert not out.exists()
