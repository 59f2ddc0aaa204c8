"""DICOM export: read back with pydicom, pixels and geometry checked against the NIfTI export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.data.header import make_ismrmrd_header
from mri_recon.evaluation import EvalSettings, run_evaluation
from mri_recon.physics.masks import ColumnMaskFunc

pydicom = pytest.importorskip("pydicom")
nibabel = pytest.importorskip("nibabel")

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


class Checkpointed(ZeroFilled):
    """A method that says which checkpoint it came from, as ``load_reconstructor``'s do."""

    checkpoint = "best.ckpt " + "ab12" * 16


def _run(root: Path, run_dir: Path) -> None:
    settings = EvalSettings(
        root=root,
        challenge="multicoil",
        split="val",
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=run_dir,
        progress=False,
        num_resamples=50,
        num_figures=0,
        export=["nifti", "dicom"],
    )
    run_evaluation(settings, {"zero_filled": ZeroFilled(), "net": Checkpointed()})


def _series(folder: Path) -> list:
    return [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]


def test_dicom_series_matches_the_nifti_export(tmp_path, fastmri_volume) -> None:
    root, recon_size, fov = tmp_path / "data", (32, 28, 1), (140.0, 126.0, 3.5)
    for i, (width, slices) in enumerate(((36, 3), (41, 4))):
        header = make_ismrmrd_header((64, width, 1), recon_size, field_of_view_mm=fov)
        fastmri_volume(
            root / "multicoil_val" / f"file{1000001 + i}.h5",
            challenge="multicoil",
            num_coils=3,
            width=width,
            num_slices=slices,
            target_size=recon_size[:2],
            seed=i,
            header=header,
        )
    _run(root, tmp_path / "run")
    voxel = (140 / 32, 140 / 28, 3.5)  # reconSpace fov (x, x, z) / matrix (x, y, z)
    uids = set()
    for method in ("zero_filled", "net"):
        for fname, slices in (("file1000001", 3), ("file1000002", 4)):
            folder = tmp_path / "run/reconstructions" / method
            nifti = nibabel.load(folder / f"{fname}.nii.gz")
            data = np.asarray(nifti.dataobj)  # (w, h, S)
            series = _series(folder / fname)
            assert [int(ds.InstanceNumber) for ds in series] == list(range(1, slices + 1))
            for k, ds in enumerate(series):
                assert ds.SOPClassUID == MR_IMAGE_STORAGE and ds.Modality == "MR"
                assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 0)
                assert (ds.Rows, ds.Columns) == (32, 28)
                slope = float(ds.RescaleSlope)
                pixels = ds.pixel_array.astype(np.float64) * slope + float(ds.RescaleIntercept)
                expected = np.clip(data[:, ::-1, k].T, 0, None)  # (h, w), rows from the top
                np.testing.assert_allclose(pixels, expected, rtol=0, atol=slope * 0.5001)
                assert np.allclose(ds.PixelSpacing, voxel[:2])
                assert float(ds.SliceThickness) == pytest.approx(voxel[2])
                _check_geometry(ds, nifti.affine, k)
                uids.add(ds.SOPInstanceUID)
            assert len({ds.SeriesInstanceUID for ds in series}) == 1
            assert method in series[0].SeriesDescription
            if method == "net":
                assert "best.ckpt sha256 ab12ab12ab12" in series[0].SeriesDescription
            else:
                assert "no checkpoint" in series[0].SeriesDescription
    assert len(uids) == 2 * (3 + 4)  # every image its own UID


def _check_geometry(ds, affine: np.ndarray, k: int) -> None:
    """Every corner pixel of the DICOM slice lies where NIfTI puts the same voxel."""
    iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
    row_cos, col_cos = iop[:3], iop[3:]
    drow, dcol = (float(v) for v in ds.PixelSpacing)
    h, w = ds.Rows, ds.Columns
    for r, c in ((0, 0), (h - 1, 0), (0, w - 1), (h - 1, w - 1), (h // 2, w // 3)):
        lps = np.asarray(ds.ImagePositionPatient, float) + c * dcol * row_cos + r * drow * col_cos
        ras = lps * np.array([-1, -1, 1])
        voxel = affine @ np.array([c, h - 1 - r, k, 1.0])
        np.testing.assert_allclose(ras, voxel[:3], atol=1e-6)


def test_dicom_uids_are_the_same_on_a_rerun_and_differ_by_method(tmp_path, fastmri_volume) -> None:
    root = tmp_path / "data"
    fastmri_volume(root / "multicoil_val/file1000001.h5", challenge="multicoil", num_coils=2)
    _run(root, tmp_path / "a")
    _run(root, tmp_path / "b")

    def uids(run: str, method: str) -> list[tuple[str, str, str]]:
        series = _series(tmp_path / run / "reconstructions" / method / "file1000001")
        return [(d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID) for d in series]

    assert uids("a", "net") == uids("b", "net")
    assert uids("a", "zero_filled") == uids("b", "zero_filled")
    a, b = uids("a", "net"), uids("a", "zero_filled")
    assert a[0][0] == b[0][0]  # one study per input file
    assert a[0][1] != b[0][1]  # one series per method (and checkpoint)
    assert not {u[2] for u in a} & {u[2] for u in b}
