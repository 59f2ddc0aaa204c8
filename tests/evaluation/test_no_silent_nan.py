"""Issue 21 item 1: no NaN passes silently through the evaluation and its summary."""

from __future__ import annotations

import math

import pytest
import torch

from mri_recon.baselines import ZeroFilled
from mri_recon.data.fastmri import DataError
from mri_recon.evaluation import EvalSettings, run_evaluation
from mri_recon.evaluation.report import build_summary, summary_markdown
from mri_recon.physics.masks import ColumnMaskFunc


class NaNOnSlice:
    """Zero-filled, except a NaN pixel in one slice of one file (a diverged model)."""

    name, needs_sens_maps = "broken", False

    def __init__(self, calls_before: int, row: int) -> None:
        self.calls, self.calls_before, self.row = 0, calls_before, row

    def __call__(self, masked_kspace, mask, sens_maps, crop_size):
        out = ZeroFilled()(masked_kspace, mask, None, crop_size)
        if self.calls == self.calls_before:
            out[self.row, 3, 4] = torch.nan
        self.calls += 1
        return out


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_non_finite_reconstruction_stops_the_run_naming_file_and_slice(
    tmp_path, fastmri_split, split
):
    paths = fastmri_split(tmp_path / "data", split=split, widths=(36, 40), num_slices=3)
    settings = EvalSettings(
        root=tmp_path / "data",
        challenge="singlecoil",
        split=split,
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=tmp_path / "run",
        progress=False,
        num_resamples=20,
        batch_size=8,
    )
    methods = {"zero_filled": ZeroFilled(), "broken": NaNOnSlice(calls_before=1, row=2)}
    with pytest.raises(DataError) as info:
        run_evaluation(settings, methods)
    message = str(info.value)
    assert message.startswith(f"{paths[1]}: ") and "broken" in message
    assert "slice 2" in message and "\n" not in message
    assert not (tmp_path / "run" / "per_volume.csv").exists()


def _row(fname: str, method: str, psnr: float) -> dict:
    return {
        "fname": fname,
        "acquisition": "CORPD_FBK",
        "method": method,
        "acceleration": 4.0,
        "nmse": 0.1,
        "psnr": psnr,
        "ssim": 0.5,
        "seconds_per_slice": 0.01,
    }


def test_one_volume_without_a_value_never_drops_the_metric_from_the_summary():
    rows = [
        _row(f"file{i}.h5", method, 20.0 + i + (method == "tv"))
        for i in range(4)
        for method in ("zero_filled", "tv")
    ]
    rows[3]["psnr"] = math.inf  # a perfect reconstruction of one volume
    summary, entries, paired = build_summary(rows, [], {"split": "val"}, num_resamples=20)
    assert summary["metrics"] == ["nmse", "psnr", "ssim"]
    assert summary["missing"] == {"psnr": 1}
    tv_all = next(e for e in entries if e["method"] == "tv" and e["acquisition"] == "all")
    assert tv_all["n"] == 4 and tv_all["psnr"].n == 3 and tv_all["ssim"].n == 4
    assert tv_all["psnr"].mean == pytest.approx((21 + 23 + 24) / 3)
    diff = next(e for e in paired if e["acquisition"] == "all")
    assert diff["psnr"].n == 3 and diff["psnr"].mean == pytest.approx(1.0)
    markdown = summary_markdown(summary, entries, paired)
    assert "No targets" not in markdown
    assert "PSNR (dB): no finite value in 1 (volume, method) row(s)" in markdown


def test_a_nan_tuning_curve_stops_naming_file_and_slice(tmp_path, fastmri_split):
    from mri_recon.evaluation.tuning import sweep

    paths = fastmri_split(tmp_path / "data", split="val", widths=(36,), num_slices=5)
    settings = EvalSettings(
        root=tmp_path / "data",
        challenge="singlecoil",
        split="val",
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=tmp_path / "run",
        progress=False,
    )
    # the central 3 slices are 1..3; the broken method's row 1 is volume slice 2
    methods = {0.01: ZeroFilled(), 0.1: NaNOnSlice(calls_before=0, row=1)}
    with pytest.raises(DataError) as info:
        sweep(settings, methods, max_slices=3)
    assert str(info.value) == (
        f"{paths[0]}: the lam=0.1 reconstruction has NaN or Inf values (first in slice 2)"
    )


def test_a_non_finite_target_behind_a_clean_verdict_stops_naming_file_and_slice(
    tmp_path, fastmri_split, monkeypatch
):
    """With data.prescan=full a volume's values are not read again on load: a target that
    went bad behind its cached clean verdict is caught when scored, once per volume, naming
    the file, the target key and the slice (not as a NaN metric of some method)."""
    import h5py
    import numpy as np

    from mri_recon.data import prescan

    paths = fastmri_split(tmp_path / "data", split="val", widths=(36,), num_slices=3)
    settings = EvalSettings(
        root=tmp_path / "data",
        challenge="singlecoil",
        split="val",
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=tmp_path / "run",
        progress=False,
        num_resamples=20,
    )
    # a key the edit cannot change (what rsync -a / cp -p once kept): the verdict stays clean
    monkeypatch.setattr(prescan, "stat_key", lambda path: {"path": str(path), "stat": "same"})
    run_evaluation(settings, {"zero_filled": ZeroFilled()})  # prescanned clean, cached
    with h5py.File(paths[0], "r+") as hf:
        hf["reconstruction_esc"][1, 2, 3] = np.nan
    with pytest.raises(DataError) as info:
        run_evaluation(settings, {"zero_filled": ZeroFilled(), "tv": ZeroFilled()})
    assert str(info.value) == (
        f"{paths[0]}: reconstruction_esc has NaN or Inf values (first in slice 1)"
    )
