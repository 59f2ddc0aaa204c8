"""The evaluation loop (no Hydra): outputs, masks, coil maps, timing, bad files, figures."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mri_recon.baselines import TVReconstructor, ZeroFilled
from mri_recon.data.fastmri import DataError
from mri_recon.evaluation import (
    CSV_COLUMNS,
    EXTRA_COLUMNS,
    EvalSettings,
    Staging,
    run_evaluation,
    write_json,
)
from mri_recon.evaluation import outputs as outputs_module
from mri_recon.evaluation import run as run_module
from mri_recon.fileio import OutputError
from mri_recon.metrics.image import volume_metrics
from mri_recon.physics.masks import ColumnMaskFunc, file_seed, mask_hash
from mri_recon.viz.figures import comparison_figure, save_figure

OUTPUTS = ("per_volume.csv", "summary.md", "summary.json", "figures", "reconstructions")


class Spy:
    """A reconstructor that records its inputs and returns the zero-filled image."""

    def __init__(self, name: str = "spy", needs_sens_maps: bool = True, sleep: float = 0.0):
        self.name, self.needs_sens_maps, self.sleep = name, needs_sens_maps, sleep
        self.calls: list[dict] = []

    def __call__(self, masked_kspace, mask, sens_maps, crop_size):
        self.calls.append(
            {
                "kspace": masked_kspace.clone(),
                "mask": mask.clone(),
                "sens_maps": sens_maps,
                "crop_size": crop_size,
            }
        )
        time.sleep(self.sleep)
        return ZeroFilled()(masked_kspace, mask, None, crop_size)


def _settings(root: Path, run_dir: Path, **kw) -> EvalSettings:
    kw.setdefault("challenge", "singlecoil")
    kw.setdefault("split", "val")
    kw.setdefault("mask_func", ColumnMaskFunc("random", [0.08], [4]))
    return EvalSettings(
        root=root, mask_name="random_4x", run_dir=run_dir, progress=False, num_resamples=200, **kw
    )


def _outputs_present(run_dir: Path) -> list[str]:
    return [name for name in OUTPUTS if (run_dir / name).exists()]


def test_singlecoil_run_writes_every_output(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    run_dir = tmp_path / "run"
    report = run_evaluation(
        _settings(tmp_path / "data", run_dir, num_figures=2),
        {"zero_filled": ZeroFilled(), "tv": TVReconstructor(max_iters=4)},
    )
    assert _outputs_present(run_dir) == list(OUTPUTS)
    assert not list(run_dir.glob(".staging-*"))
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == [
        "file1000001.png",
        "file1000002.png",
    ]
    with open(run_dir / "per_volume.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(next(iter(rows)).keys())[: len(CSV_COLUMNS)] == CSV_COLUMNS
    assert len(rows) == 6 and {r["method"] for r in rows} == {"zero_filled", "tv"}
    for path in paths:
        with h5py.File(path) as hf:
            target = hf["reconstruction_esc"][()]
        for method in ("zero_filled", "tv"):
            with h5py.File(run_dir / "reconstructions" / method / path.name) as hf:
                recon = hf["reconstruction"][()]
            assert recon.dtype == np.float32 and recon.shape == target.shape
            row = next(r for r in rows if r["fname"] == path.name and r["method"] == method)
            expected = volume_metrics(target, recon)
            assert float(row["ssim"]) == expected["ssim"]  # the written file is what was scored
            assert float(row["psnr"]) == expected["psnr"]
            assert float(row["nmse"]) == expected["nmse"]
            assert row["mask"] == "random_4x" and float(row["acceleration"]) == 4.0
            assert float(row["seconds_per_slice"]) > 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["num_volumes"] == 3 and summary["metrics"] == ["nmse", "psnr", "ssim"]
    assert {(e["method"], e["acquisition"]) for e in summary["summary"]} >= {
        ("zero_filled", "all"),
        ("tv", "all"),
        ("tv", "CORPD_FBK"),
        ("tv", "CORPDFS_FBK"),
    }
    paired = [e for e in summary["paired_differences"] if e["acquisition"] == "all"]
    assert [e["method"] for e in paired] == ["tv"]
    tv_ssim = np.mean([float(r["ssim"]) for r in rows if r["method"] == "tv"])
    zf_ssim = np.mean([float(r["ssim"]) for r in rows if r["method"] == "zero_filled"])
    assert paired[0]["ssim"]["mean"] == pytest.approx(tv_ssim - zf_ssim)
    assert report.markdown == (run_dir / "summary.md").read_text()
    assert "| tv | 4 | all | 3 |" in report.markdown


def test_per_file_masks_and_shared_coil_maps(tmp_path, fastmri_split, monkeypatch) -> None:
    paths = fastmri_split(
        tmp_path / "data",
        challenge="multicoil",
        split="val",
        widths=(36,),
        num_slices=3,
        num_coils=3,
    )
    calls = []
    real = run_module.estimate_sens_maps
    monkeypatch.setattr(
        run_module, "estimate_sens_maps", lambda k, m: calls.append(k.shape) or real(k, m)
    )
    with_maps, without = Spy("with_maps", True), Spy("without", False)
    run_evaluation(
        _settings(tmp_path / "data", tmp_path / "run", challenge="multicoil", batch_size=2),
        {"with_maps": with_maps, "without": without},
    )
    assert calls == [(2, 3, 64, 36), (1, 3, 64, 36)]  # once per batch, shared by methods
    assert all(c["sens_maps"] is None for c in without.calls)
    assert len(with_maps.calls) == len(without.calls) == 2
    for c_with, c_without in zip(with_maps.calls, without.calls, strict=True):
        assert c_with["sens_maps"].shape == c_with["kspace"].shape
        assert torch.equal(c_with["kspace"], c_without["kspace"])  # same masked data
    expected = ColumnMaskFunc("random", [0.08], [4])(36, seed=file_seed(paths[0].name)).mask
    for call in with_maps.calls:
        assert torch.equal(call["mask"], expected.expand_as(call["mask"]))
        unsampled = call["kspace"][..., ~expected]
        assert unsampled.abs().max() == 0


def test_the_settings_coil_map_estimator_is_the_one_used(tmp_path, fastmri_split) -> None:
    fastmri_split(
        tmp_path / "data", challenge="multicoil", split="val", widths=(36,), num_slices=3,
        num_coils=3,
    )  # fmt: skip
    calls = []

    def maps(kspace, mask):
        calls.append(kspace.shape)
        return torch.full_like(kspace, 0.5)

    spy = Spy("with_maps", True)
    settings = _settings(
        tmp_path / "data", tmp_path / "run", challenge="multicoil", batch_size=2, coil_maps=maps
    )
    report = run_evaluation(settings, {"with_maps": spy})
    assert calls == [(2, 3, 64, 36), (1, 3, 64, 36)]
    assert all(bool((c["sens_maps"] == 0.5).all()) for c in spy.calls)
    assert "maps" in report.summary["run"]["coil_maps"]


def test_csv_records_each_volume_mask(tmp_path, fastmri_split) -> None:
    """The appended mask columns describe the mask each volume was reconstructed with."""
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    fn = ColumnMaskFunc("variable_density", [0.08], [4], density="gaussian", sigma=0.3)
    spy, run_dir = Spy(), tmp_path / "run"
    run_evaluation(_settings(tmp_path / "data", run_dir, mask_func=fn), {"spy": spy})
    with open(run_dir / "per_volume.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == (*CSV_COLUMNS, *EXTRA_COLUMNS)
    assert reader.fieldnames[-5:] == [
        "mask_type",
        "mask_seed",
        "mask_num_sampled",
        "num_low_frequencies",
        "mask_hash",
    ]
    hashes = set()
    for path, call, row in zip(paths, spy.calls, rows, strict=True):
        used, width = call["mask"][0], call["mask"].shape[-1]
        assert row["fname"] == path.name and row["mask_seed"] == path.name  # file_seed(fname)
        assert row["mask_type"] == "variable_density"
        assert int(row["mask_num_sampled"]) == int(used.sum()) == round(width / 4)
        assert int(row["num_low_frequencies"]) == round(width * 0.08)
        assert row["mask_hash"] == mask_hash(used)
        assert row["mask_hash"] == mask_hash(fn(width, seed=file_seed(path.name)).mask)
        hashes.add(row["mask_hash"])
    assert len(hashes) == 3


def test_multicoil_tv_with_estimated_maps(tmp_path, fastmri_split) -> None:
    fastmri_split(
        tmp_path / "data",
        challenge="multicoil",
        split="val",
        widths=(36,),
        num_slices=2,
        num_coils=4,
    )
    report = run_evaluation(
        _settings(tmp_path / "data", tmp_path / "run", challenge="multicoil", num_figures=0),
        {"zero_filled": ZeroFilled(), "tv": TVReconstructor(lam=0.001, max_iters=20)},
    )
    ssim = {r["method"]: r["ssim"] for r in report.rows}
    assert 0 < ssim["tv"] <= 1 and 0 < ssim["zero_filled"] <= 1
    assert not (tmp_path / "run" / "figures").exists()


def test_seconds_per_slice_is_wall_time_per_slice(tmp_path, fastmri_split) -> None:
    fastmri_split(tmp_path / "data", split="val", widths=(36,), num_slices=3)
    slow = Spy("slow", needs_sens_maps=False, sleep=0.05)
    report = run_evaluation(
        _settings(tmp_path / "data", tmp_path / "run", batch_size=2, num_figures=0), {"slow": slow}
    )
    assert len(slow.calls) == 2  # batches of 2 + 1 slices
    seconds = report.rows[0]["seconds_per_slice"]
    assert 2 * 0.05 / 3 <= seconds < 2 * 0.05 / 3 + 0.05


def test_bad_file_fails_before_any_output(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    paths[1].write_bytes(paths[1].read_bytes()[:300])  # truncated
    run_dir = tmp_path / "run"
    with pytest.raises(DataError, match=rf"^{paths[1]}: "):
        run_evaluation(_settings(tmp_path / "data", run_dir), {"zero_filled": ZeroFilled()})
    assert _outputs_present(run_dir) == [] and not list(run_dir.glob(".staging-*"))


@pytest.mark.parametrize("prescan", ["full", "header"])
def test_nan_is_found_before_any_reconstruction(tmp_path, fastmri_split, prescan) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    with h5py.File(paths[2], "r+") as hf:  # the header is fine: only the full read sees it
        hf["kspace"][1, 3, 4] = np.nan
    run_dir, spy = tmp_path / "run", Spy()
    with pytest.raises(DataError, match=rf"^{paths[2]}: kspace has NaN"):
        run_evaluation(_settings(tmp_path / "data", run_dir, prescan=prescan), {"spy": spy})
    # full: the prescan finds it before any work; header: when the volume is loaded
    assert len(spy.calls) == (0 if prescan == "full" else 2)
    assert _outputs_present(run_dir) == [] and not list(run_dir.glob(".staging-*"))


def test_target_shapes_follow_fastmri_crop_rule(tmp_path, fastmri_volume) -> None:
    """A target wider than W is evaluated on (W, W) crops; one taller than H is bad."""
    folder = tmp_path / "data" / "singlecoil_val"
    wide = fastmri_volume(folder / "a_wide.h5", height=48, width=28, target_size=(32, 32))
    spy = Spy()
    report = run_evaluation(_settings(tmp_path / "data", tmp_path / "run"), {"spy": spy})
    assert spy.calls[0]["crop_size"] == (28, 28) and 0 < report.rows[0]["ssim"] < 1
    with h5py.File(tmp_path / "run/reconstructions/spy/a_wide.h5") as hf:
        assert hf["reconstruction"].shape == (3, 28, 28)
    tall = fastmri_volume(folder / "b_tall.h5", height=32, width=28, target_size=(40, 32))
    with pytest.raises(DataError) as excinfo:
        run_evaluation(_settings(tmp_path / "data", tmp_path / "run2"), {"spy": spy})
    assert str(excinfo.value) == (
        f"{tall}: target reconstruction_esc (40, 32) is taller than the kspace image "
        "(H, W) = (32, 28)"
    )
    assert len(spy.calls) == 1 and wide.exists() and not (tmp_path / "run2").exists()


def test_skip_bad_files_lists_them(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    paths[0].write_bytes(b"not hdf5")
    with h5py.File(paths[2], "r+") as hf:
        hf["kspace"][0, 0, 0] = np.inf
    run_dir = tmp_path / "run"
    report = run_evaluation(
        _settings(tmp_path / "data", run_dir, skip_bad_files=True), {"zero_filled": ZeroFilled()}
    )
    assert [r["fname"] for r in report.rows] == [paths[1].name]
    skipped = json.loads((run_dir / "summary.json").read_text())["skipped"]
    assert [s["fname"] for s in skipped] == [paths[0].name, paths[2].name]
    assert "HDF5" in skipped[0]["reason"] and "NaN or Inf" in skipped[1]["reason"]
    markdown = (run_dir / "summary.md").read_text()
    assert "Skipped files (2)" in markdown and paths[2].name in markdown
    assert sorted(p.name for p in (run_dir / "reconstructions/zero_filled").iterdir()) == [
        paths[1].name
    ]


def test_test_split_uses_the_stored_mask(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="test", widths=(36, 40))
    spy = Spy()
    run_dir = tmp_path / "run"
    settings = _settings(
        tmp_path / "data", run_dir, split="test", mask_func=ColumnMaskFunc("random", [0.04], [8])
    )
    report = run_evaluation(settings, {"spy": spy})
    for path, call in zip(paths, spy.calls, strict=True):
        with h5py.File(path) as hf:
            stored = torch.from_numpy(hf["mask"][()].astype(bool))
            acceleration = hf.attrs["acceleration"]
            num_low = hf.attrs["num_low_frequency"]
        assert torch.equal(call["mask"][0], stored)  # never a new mask
        with h5py.File(run_dir / "reconstructions/spy" / path.name) as hf:
            assert hf["reconstruction"].shape == (3, 32, 32)
        row = next(r for r in report.rows if r["fname"] == path.name)
        assert row["mask"] == "stored" and row["acceleration"] == acceleration
        assert (row["mask_type"], row["mask_seed"]) == ("stored", "")
        assert row["mask_hash"] == mask_hash(stored)
        assert row["mask_num_sampled"] == int(stored.sum())
        assert row["num_low_frequencies"] == num_low > 0
    assert all(r["ssim"] is None for r in report.rows)
    assert not (run_dir / "figures").exists()
    with open(run_dir / "per_volume.csv") as f:
        assert {r["ssim"] for r in csv.DictReader(f)} == {""}
    assert json.loads((run_dir / "summary.json").read_text())["metrics"] == []


def test_json_writer_is_strict(tmp_path) -> None:
    write_json(tmp_path / "c.json", {"v": float("nan"), "a": np.float32(2.0)})
    assert json.loads((tmp_path / "c.json").read_text()) == {"v": None, "a": 2.0}


def _tree(run_dir: Path) -> dict[str, str]:
    """Every file under ``run_dir`` (relative path -> content) but in staging directories."""
    files = (p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file())
    return {str(p): (run_dir / p).read_text() for p in files if not p.parts[0].startswith(".st")}


def _previous_run(run_dir: Path) -> dict[str, str]:
    for name, text in {
        "per_volume.csv": "old csv",
        "summary.md": "old md",
        "figures/a.png": "old png",
        "reconstructions/tv/a.h5": "old tv",
        "reconstructions/zf/a.h5": "old zf",
        ".hydra/config.yaml": "hydra's",
        "eval.log": "hydra's log",
    }.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_text(text)
    return _tree(run_dir)


def _stage_new(staging: Staging) -> None:
    staging.path("reconstructions/zf/b.h5").write_text("new zf")
    staging.path("per_volume.csv").write_text("new csv")
    staging.path("summary.md").write_text("new md")


def test_rerun_with_fewer_methods_keeps_nothing_of_the_previous_run(
    tmp_path, fastmri_split
) -> None:
    fastmri_split(tmp_path / "data", split="val", widths=(36, 40))
    run_dir = tmp_path / "run"
    run_evaluation(_settings(tmp_path / "data", run_dir), {"a": Spy("a"), "b": Spy("b")})
    assert sorted(p.name for p in (run_dir / "reconstructions").iterdir()) == ["a", "b"]
    (run_dir / ".hydra").mkdir()
    run_evaluation(_settings(tmp_path / "data", run_dir, num_figures=1), {"b": Spy("b")})
    assert sorted(p.name for p in (run_dir / "reconstructions").iterdir()) == ["b"]
    assert len(list((run_dir / "figures").iterdir())) == 1
    with open(run_dir / "per_volume.csv") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"b"}
    assert (run_dir / ".hydra").is_dir() and not list(run_dir.glob(".staging-*"))


def test_staging_publishes_exactly_the_new_outputs(tmp_path) -> None:
    run_dir = tmp_path / "run"
    before = _previous_run(run_dir)
    with Staging(run_dir) as staging:
        _stage_new(staging)
        assert _tree(run_dir) == before  # nothing visible before publish
        files = staging.publish()
    assert files == [
        run_dir / n for n in ("per_volume.csv", "reconstructions/zf/b.h5", "summary.md")
    ]
    assert _tree(run_dir) == {
        ".hydra/config.yaml": "hydra's",
        "eval.log": "hydra's log",
        "per_volume.csv": "new csv",
        "summary.md": "new md",
        "reconstructions/zf/b.h5": "new zf",
    }
    with pytest.raises(RuntimeError), Staging(run_dir) as staging:
        staging.path("summary.md").write_text("partial")
        raise RuntimeError("boom")
    assert (run_dir / "summary.md").read_text() == "new md"
    assert not list(run_dir.glob(".staging-*"))


@pytest.mark.parametrize("failing", ["figures", "summary.md"])
def test_an_output_that_cannot_be_replaced_changes_nothing(tmp_path, monkeypatch, failing) -> None:
    """figures: the old one cannot be moved aside; summary.md: the new one cannot go in (after
    the new per_volume.csv and reconstructions/ did)."""
    run_dir = tmp_path / "run"
    before = _previous_run(run_dir)
    real, failed = os.rename, []

    def rename(src, dst):
        if Path(src if failing == "figures" else dst) == run_dir / failing and not failed:
            failed.append(src)
            raise PermissionError(13, "Permission denied", str(src))
        real(src, dst)

    monkeypatch.setattr(outputs_module.os, "rename", rename)
    staging = Staging(run_dir)
    _stage_new(staging)
    with pytest.raises(OutputError) as excinfo:
        staging.publish()
    assert str(excinfo.value) == (
        f"{run_dir / failing}: cannot replace the previous output (Permission denied); "
        f"{run_dir} is left as it was"
    )
    assert _tree(run_dir) == before and not list(run_dir.glob(".staging-*"))


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the process runs after it."""


def _kill(*args, **kwargs):
    raise Killed


@pytest.mark.parametrize("renames_before_kill", [None, 0, 2, 4, 6, 7])
def test_a_killed_run_is_undone_by_the_next_one(tmp_path, monkeypatch, renames_before_kill) -> None:
    """Killed before publishing (None), or after some of the publish's 7 renames; the next run
    into the directory restores the previous outputs and removes the stale staging (killed
    after all 7, while cleaning up, the new outputs stay)."""
    run_dir = tmp_path / "run"
    before = _previous_run(run_dir)
    (run_dir / ".staging-from-an-older-version").mkdir()
    (run_dir / ".staging-from-an-older-version" / "per_volume.csv").write_text("stale")
    staging = Staging(run_dir)
    assert sorted(run_dir.glob(".staging-*")) == [staging.dir]  # the older one is gone
    _stage_new(staging)
    if renames_before_kill is not None:
        count, real = [0], os.rename

        def rename(src, dst):
            if count[0] == renames_before_kill:
                _kill()
            count[0] += 1
            real(src, dst)

        monkeypatch.setattr(outputs_module.os, "rename", rename)
        monkeypatch.setattr(outputs_module.shutil, "rmtree", _kill)
        with pytest.raises(Killed):
            staging.publish()
        monkeypatch.undo()
    os.close(staging._lock)  # the kernel drops a killed process's lock
    assert staging.dir.is_dir()
    published = _tree(run_dir) if renames_before_kill == 7 else before
    with Staging(run_dir) as again:
        assert _tree(run_dir) == published and sorted(run_dir.glob(".staging-*")) == [again.dir]
        with pytest.raises(OutputError, match=rf"^{run_dir}: another run is writing into it$"):
            Staging(run_dir)
        _stage_new(again)
        again.publish()
    assert _tree(run_dir)["per_volume.csv"] == "new csv"


def test_comparison_figure(tmp_path) -> None:
    rng = np.random.default_rng(0)
    target = rng.random((12, 9)).astype(np.float32)
    recons = {"a": target + 0.1, "b": torch.from_numpy(target * 0.5)}
    fig = comparison_figure(
        target, recons, {"a": {"ssim": 0.9, "psnr": 30.0}, "b": None}, title="t"
    )
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "a\nSSIM 0.9000  PSNR 30.00 dB" in titles and "b" in titles
    err_images = [ax.images[0] for ax in fig.axes[4:6]]  # bottom row: the two error maps
    emax = max(0.1, 0.5 * float(target.max()))
    assert [im.get_clim() for im in err_images] == [(0.0, pytest.approx(emax, rel=1e-6))] * 2
    out = save_figure(fig, tmp_path / "f.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
    with pytest.raises(ValueError, match=r"of its shape, got target \(\d+, \d+\) and \{'a'"):
        comparison_figure(target, {"a": target[:, :-1]})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_gives_the_cpu_numbers(tmp_path, fastmri_split) -> None:
    fastmri_split(
        tmp_path / "data", challenge="multicoil", split="val", widths=(36, 40), num_coils=3
    )
    methods = {"zero_filled": ZeroFilled(), "tv": TVReconstructor(max_iters=20)}
    rows = {}
    for device in ("cpu", "cuda"):
        settings = _settings(
            tmp_path / "data",
            tmp_path / device,
            challenge="multicoil",
            device=torch.device(device),
            num_figures=0,
        )
        rows[device] = run_evaluation(settings, methods).rows
    for cpu, gpu in zip(rows["cpu"], rows["cuda"], strict=True):
        assert (cpu["fname"], cpu["method"]) == (gpu["fname"], gpu["method"])
        for key in ("nmse", "psnr", "ssim"):
            assert gpu[key] == pytest.approx(cpu[key], rel=1e-3), key


def _header_with_recon_fov(width: int, recon_size: tuple, fov: tuple | None) -> bytes:
    """A header whose reconSpace field of view is ``fov`` (x, y, z) mm, or has none."""
    from mri_recon.data.header import make_ismrmrd_header

    xml = make_ismrmrd_header((64, width, 1), recon_size).decode()
    head, rest = xml.split("<reconSpace>")
    recon, tail = rest.split("</reconSpace>")
    recon = recon[: recon.index("<fieldOfView_mm>")]
    if fov is not None:
        recon += "<fieldOfView_mm>" + "".join(
            f"<{a}>{v}</{a}>" for a, v in zip("xyz", fov, strict=True)
        )
        recon += "</fieldOfView_mm>"
    return f"{head}<reconSpace>{recon}</reconSpace>{tail}".encode()


def test_nifti_export_stacks_slices_with_the_header_voxel_size(tmp_path, fastmri_volume) -> None:
    import nibabel

    root = tmp_path / "data"
    fov, recon_size = (140.0, 126.0, 3.5), (32, 28, 1)  # voxels 4.375 x 4.5 x 3.5 mm
    for i, width in enumerate((36, 40)):
        fastmri_volume(
            root / "singlecoil_val" / f"file{1000001 + i}.h5",
            width=width,
            num_slices=3 + i,
            seed=i,
            header=_header_with_recon_fov(width, recon_size, fov),
        )
    run_dir = tmp_path / "run"
    report = run_evaluation(_settings(root, run_dir, export="nifti"), {"zero_filled": ZeroFilled()})
    assert not list(run_dir.glob(".staging-*"))
    for fname in ("file1000001", "file1000002"):
        with h5py.File(run_dir / "reconstructions/zero_filled" / f"{fname}.h5") as hf:
            recon = hf["reconstruction"][()]  # (S, h, w)
        image = nibabel.load(run_dir / "reconstructions/zero_filled" / f"{fname}.nii.gz")
        data = np.asarray(image.dataobj)
        assert data.shape == (recon.shape[2], recon.shape[1], recon.shape[0])  # (w, h, S)
        for s in range(recon.shape[0]):  # i = column, j = row from the bottom, k = slice
            np.testing.assert_array_equal(data[:, :, s], recon[s, ::-1, :].T)
        # i runs along the columns (reconSpace y), j along the rows (x), k across slices (z)
        assert image.header.get_zooms() == pytest.approx((126 / 28, 140 / 32, 3.5))
        np.testing.assert_allclose(np.diag(image.affine), [126 / 28, 140 / 32, 3.5, 1])
        assert image.header.get_xyzt_units()[0] == "mm"
    assert len(report.rows) == 2


def test_nifti_export_needs_a_field_of_view_and_a_known_format(tmp_path, fastmri_volume) -> None:
    root = tmp_path / "data"
    path = fastmri_volume(
        root / "singlecoil_val" / "file1000001.h5",
        header=_header_with_recon_fov(36, (32, 32, 1), None),
    )
    run_dir = tmp_path / "run"
    settings = _settings(root, run_dir, export="nifti")
    with pytest.raises(DataError, match=rf"^{path}: .*reconSpace/fieldOfView_mm"):
        run_evaluation(settings, {"zero_filled": ZeroFilled()})
    assert _outputs_present(run_dir) == []
    report = run_evaluation(_settings(root, run_dir), {"zero_filled": ZeroFilled()})
    assert report.rows and not list(run_dir.rglob("*.nii.gz"))  # no export: no field needed
    with pytest.raises(ValueError, match=r"^export: must be one of nifti, dicom, got 'png'$"):
        _settings(root, run_dir, export=["nifti", "png"])
