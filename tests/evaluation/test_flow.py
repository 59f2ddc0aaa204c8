"""Values flow once through the evaluation: each volume's header is parsed once per run (the
prescan's read), its k-space read once, and the mask that was scored is the mask reported."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mri_recon.baselines import ZeroFilled
from mri_recon.data import fastmri
from mri_recon.evaluation import EvalSettings, iter_volumes, run_evaluation
from mri_recon.evaluation.grid import grid_cells, run_grid
from mri_recon.physics.masks import ColumnMaskFunc, file_seed, mask_hash


@pytest.fixture
def header_parses(monkeypatch) -> Counter:
    """Counts of ``parse_ismrmrd_header`` calls (every header parse of the package goes
    through ``read_volume_info``), keyed by the file that was being read."""
    counts: Counter = Counter()
    real_parse, real_read = fastmri.parse_ismrmrd_header, fastmri.read_volume_info
    reading: list[str] = []

    def read(path, *args, **kwargs):
        reading.append(Path(path).name)
        try:
            return real_read(path, *args, **kwargs)
        finally:
            reading.pop()

    def parse(raw):
        counts[reading[-1] if reading else "?"] += 1
        return real_parse(raw)

    monkeypatch.setattr(fastmri, "parse_ismrmrd_header", parse)
    # the callers hold their own reference to read_volume_info
    for module in ("mri_recon.data.fastmri", "mri_recon.data.prescan"):
        monkeypatch.setattr(f"{module}.read_volume_info", read)
    return counts


def _settings(root: Path, run_dir: Path, **kw) -> EvalSettings:
    return EvalSettings(
        root=root,
        challenge="singlecoil",
        split="val",
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=run_dir,
        progress=False,
        num_resamples=50,
        num_figures=0,
        **kw,
    )


@pytest.mark.parametrize("prescan", ["full", "header"])
def test_one_header_parse_per_volume_per_run(tmp_path, fastmri_split, header_parses, prescan):
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40, 38))
    settings = _settings(tmp_path / "data", tmp_path / "run", prescan=prescan, max_volumes=2)
    report = run_evaluation(settings, {"zero_filled": ZeroFilled()})
    assert header_parses == Counter({p.name: 1 for p in paths[:2]})
    # the report carries the masks that were scored, the ones the CSV rows describe
    assert list(report.masks) == [p.name for p in paths[:2]]
    for row in report.rows:
        vm = report.masks[row["fname"]]
        assert row["mask_hash"] == mask_hash(vm.mask) == vm.columns()["mask_hash"]
        width = 36 if row["fname"] == paths[0].name else 40
        drawn = settings.mask_func(width, seed=file_seed(row["fname"])).mask
        assert mask_hash(drawn) == row["mask_hash"]


def test_the_grid_parses_each_header_once_for_all_cells(
    tmp_path, fastmri_split, header_parses
) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40))
    cells = grid_cells(["random", "equispaced_fraction"], [2, 4])
    rows = run_grid(_settings(tmp_path / "data", tmp_path / "run"), {"zf": ZeroFilled()}, cells, {})
    assert len(rows) == len(cells) * len(paths)
    assert header_parses == Counter({p.name: 1 for p in paths})


def test_iter_volumes_yields_each_volume_with_its_mask(tmp_path, fastmri_split) -> None:
    paths = fastmri_split(tmp_path / "data", split="val", widths=(36, 40))
    settings = _settings(tmp_path / "data", tmp_path / "run")
    volumes = iter_volumes(settings)
    assert [i.fname for i in volumes.infos] == [p.name for p in paths]
    seen = []
    for info, volume, vmask in volumes:
        assert volume.info is info  # loaded from the selection's info, not read again
        assert volume.kspace.shape[-1] == vmask.mask.shape[0] == info.image_shape[1]
        assert vmask.source == "drawn" and vmask.seed == info.fname
        seen.append(info.fname)
    assert seen == [p.name for p in paths] and volumes.skipped == []


def test_grid_outputs_are_published_all_or_nothing(tmp_path, fastmri_split, monkeypatch) -> None:
    from mri_recon.evaluation import grid as grid_module

    fastmri_split(tmp_path / "data", split="val", widths=(36,))
    out = tmp_path / "run"
    settings, cells = _settings(tmp_path / "data", out), grid_cells(["random"], [2, 4])
    run_grid(settings, {"zf": ZeroFilled()}, cells, {})
    names = ("grid.csv", "grid.md", "figures")
    before = {n: (out / n).stat().st_mtime_ns for n in names}
    csv_text = (out / "grid.csv").read_text()

    def fails(folder, *args):  # the figures of a rerun fail after grid.csv and grid.md
        raise RuntimeError("disk full")

    monkeypatch.setattr(grid_module, "write_figures", fails)
    with pytest.raises(RuntimeError, match="disk full"):
        run_grid(settings, {"zf": ZeroFilled()}, cells, {})
    assert {n: (out / n).stat().st_mtime_ns for n in names} == before
    assert (out / "grid.csv").read_text() == csv_text and not list(out.glob(".staging-*"))
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "grid_ssim_vs_acceleration.png",
        "grid_ssim_zf.png",
    ]
