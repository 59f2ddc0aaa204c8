"""Prediction without targets: test files with stored masks, undersampled k-space whose mask
is in its zero columns, fully sampled files with a mask function; h5, NIfTI and DICOM out."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.data.fastmri import DataError
from mri_recon.evaluation import EvalSettings
from mri_recon.evaluation.predict import predict, select_inputs
from mri_recon.physics.masks import ColumnMaskFunc


def _settings(root, run_dir, mask_func=None, **kw) -> EvalSettings:
    return EvalSettings(
        root=root, challenge="multicoil", split="test", mask_name="stored", mask_func=mask_func,
        run_dir=run_dir, progress=False, num_resamples=20, num_figures=0, **kw,
    )  # fmt: skip


def test_predict_a_folder_of_test_files_into_h5_nifti_and_dicom(tmp_path, fastmri_split) -> None:
    pydicom = pytest.importorskip("pydicom")
    paths = fastmri_split(tmp_path, challenge="multicoil", split="test", widths=(36, 41))
    selection = select_inputs(paths[0].parent)
    lines: list[str] = []
    settings = _settings(paths[0].parent, tmp_path / "out", export=("nifti", "dicom"))
    predict(settings, {"zero_filled": ZeroFilled()}, selection, log=lines.append)
    out = tmp_path / "out/reconstructions/zero_filled"
    for path in paths:
        with h5py.File(path) as hf:
            stored = hf["mask"][()].astype(bool)
        with h5py.File(out / path.name) as hf:
            recon = hf["reconstruction"]
            assert recon.dtype == np.float32 and recon.shape == (3, 32, 32)
        assert (out / f"{path.stem}.nii.gz").is_file()
        assert len([pydicom.dcmread(p) for p in (out / path.stem).glob("*.dcm")]) == 3
        assert any(line.startswith(f"{path.name}: 3 slices, stored mask") for line in lines)
        assert stored.sum() < stored.size
    assert lines[-1].startswith("2 volumes x 1 methods in ")
    assert (tmp_path / "out/per_volume.csv").is_file()


def test_undersampled_kspace_without_a_mask_is_read_from_its_zero_columns(
    tmp_path, fastmri_volume
) -> None:
    path = fastmri_volume(
        tmp_path / "in/file1000001.h5", challenge="multicoil", width=41, padding_left=3,
        padding_right=37, test_file=True,
    )  # fmt: skip
    with h5py.File(path, "a") as hf:
        stored = hf["mask"][()].astype(bool)
        del hf["mask"]
    with pytest.raises(DataError, match="neither a target"):
        from mri_recon.data.fastmri import read_volume_info

        read_volume_info(path)
    lines: list[str] = []
    report = predict(
        _settings(path.parent, tmp_path / "out"),
        {"zero_filled": ZeroFilled()},
        select_inputs(path),
        log=lines.append,
    )
    mask = report.masks[path.name]
    expected = stored.copy()
    expected[:3] = expected[37:] = True  # padded columns are known zeros, not missing samples
    assert mask.source == "read" and torch.equal(mask.mask, torch.from_numpy(expected))
    assert mask.acceleration == pytest.approx(34 / stored[3:37].sum())
    assert "inside the encoded limits [3, 37)" in lines[0]
    assert "the 7 zero-padded columns outside them are not missing samples" in lines[0]


def test_fully_sampled_files_take_the_mask_function(tmp_path, fastmri_volume) -> None:
    path = fastmri_volume(tmp_path / "in/file1000001.h5", challenge="multicoil", width=36)
    with h5py.File(path, "a") as hf:
        del hf["reconstruction_rss"]  # raw k-space, no target
    selection = select_inputs(path.parent)
    with pytest.raises(DataError, match=r"fully sampled: set mask="):
        predict(_settings(path.parent, tmp_path / "a"), {"zero_filled": ZeroFilled()}, selection)
    assert not (tmp_path / "a/reconstructions").exists()
    mask_func = ColumnMaskFunc("random", [0.08], [4])
    report = predict(
        _settings(path.parent, tmp_path / "b", mask_func), {"zero_filled": ZeroFilled()},
        selection, log=lambda line: None,
    )  # fmt: skip
    assert report.masks[path.name].source == "drawn"
    with pytest.raises(DataError, match=r"missing: no such file or directory"):
        select_inputs(tmp_path / "missing")
