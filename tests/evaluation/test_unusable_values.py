"""Issue 21 item 6: values that are accepted but cannot work are one-line errors naming the
field or file, before anything is written."""

from __future__ import annotations

import pytest
import torch

from mri_recon.baselines import ZeroFilled
from mri_recon.data.fastmri import DataError
from mri_recon.evaluation import EvalSettings, run_evaluation
from mri_recon.evaluation.grid import grid_cells, run_grid
from mri_recon.physics.coils import espirit_maps
from mri_recon.physics.masks import ColumnMaskFunc


def _settings(root, run_dir, **kw):
    return EvalSettings(root=root, challenge="singlecoil", split="val", mask_name="random_4x",
                        mask_func=ColumnMaskFunc("random", [0.08], [4]), run_dir=run_dir,
                        progress=False, num_resamples=20, **kw)  # fmt: skip


@pytest.mark.parametrize(
    ("fov", "recon_size"),
    [((140.0, 0.0, 3.5), (32, 32, 1)), ((140.0, "inf", 3.5), (32, 32, 1)),
     ((140.0, 126.0, 3.5), (32, 32, 0))],
    ids=["zero-fov", "inf-fov", "zero-matrix"],
)  # fmt: skip
def test_nifti_export_refuses_a_zero_or_infinite_voxel(tmp_path, fastmri_volume, fov, recon_size):
    from tests.evaluation.test_run import _header_with_recon_fov

    path = fastmri_volume(tmp_path / "data" / "singlecoil_val" / "file1000001.h5",
                          header=_header_with_recon_fov(36, recon_size, fov))  # fmt: skip
    with pytest.raises(
        DataError, match=rf"^{path}: ismrmrd_header encoding/reconSpace/fieldOfView_mm "
    ):
        run_evaluation(_settings(tmp_path / "data", tmp_path / "run", export="nifti"),
                       {"zero_filled": ZeroFilled()})  # fmt: skip
    assert not (tmp_path / "run").exists()


def test_equispaced_fraction_without_spacing_is_a_value_error():
    func = ColumnMaskFunc("equispaced_fraction", [0.24], [4])
    with pytest.raises(ValueError, match=r"^center_fractions: 0.24 at acceleration 4 on 40 "):
        func(40, seed=0)  # round(40 * 0.24) * 4 == 40
    assert func(38, seed=0).mask.any()


def test_espirit_threshold_zero_is_refused():
    kspace = torch.randn(1, 2, 16, 12, dtype=torch.complex64)
    mask = torch.ones(1, 12, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"^threshold: "):
        espirit_maps(kspace, mask, threshold=0.0)


def test_a_grid_acceleration_that_samples_no_column_writes_nothing(tmp_path, fastmri_split):
    fastmri_split(tmp_path / "data", split="val", widths=(36,), num_slices=2)
    out = tmp_path / "grid"
    with pytest.raises(ValueError, match=r"^accelerations: 100 .*samples no column"):
        run_grid(_settings(tmp_path / "data", out), {"zero_filled": ZeroFilled()},
                 grid_cells(["random"], [4, 100]), {})  # fmt: skip
    assert not out.exists()
