"""``mri-recon-robustness`` on tiny generated data: the grid's rows equal ``mri-recon-eval`` on
the same mask, true accelerations, outputs, resuming after a failure mid-grid, one-line
errors with nothing written, and the ``coils`` node."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

import mri_recon.evaluation.grid as grid_module
from mri_recon.cli.evaluate import main as eval_main
from mri_recon.cli.evaluate import settings_from_config
from mri_recon.cli.notebook import compose_job
from mri_recon.cli.robustness import main
from mri_recon.evaluation.grid import GRID_COLUMNS, grid_cells, grid_markdown
from mri_recon.physics.coils import CoilMaps


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"data.root={root}",
        "methods=[zero_filled]",
        "grid.masks=[random,poisson]",
        "grid.accelerations=[2,4]",
        "progress=false",
        f"hydra.run.dir={out}",
        *extra,
    ]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_grid_rows_outputs_and_parity_with_eval(tiny_data, tmp_path, capsys) -> None:
    out = tmp_path / "grid"
    main(_args(tiny_data, out))
    assert "## SSIM: zero_filled" in capsys.readouterr().out
    rows = _read(out / "grid.csv")
    assert tuple(rows[0]) == GRID_COLUMNS
    files = sorted((tiny_data / "singlecoil_val").glob("*.h5"))
    fnames = [p.name for p in files]
    widths = {p.name: h5py.File(p)["kspace"].shape[-1] for p in files}
    cells = {(r["mask_type"], float(r["acceleration"]), float(r["center_fraction"])) for r in rows}
    assert cells == {(m, r, 0.32 / r) for m in ("random", "poisson") for r in (2.0, 4.0)}
    assert len(rows) == len(cells) * len(fnames)
    for r in rows:
        true_r = float(r["mask_acceleration"])
        assert true_r == pytest.approx(widths[r["fname"]] / int(r["mask_num_sampled"]))
        assert abs(true_r - float(r["acceleration"])) < 0.35 * float(r["acceleration"])
    # the random 4x cell is mri-recon-eval's random_4x (centre 0.08 = 0.32 / 4, per-file masks)
    eval_main([f"data.root={tiny_data}", "methods=[zero_filled]", "mask=random_4x",
               "progress=false", f"hydra.run.dir={tmp_path / 'eval'}"])  # fmt: skip
    ref = {r["fname"]: r for r in _read(tmp_path / "eval" / "per_volume.csv")}
    cell = [r for r in rows if r["mask_type"] == "random" and r["acceleration"] == "4.0"]
    assert sorted(r["fname"] for r in cell) == fnames
    for r in cell:
        for key in ("ssim", "psnr", "nmse", "mask_hash", "mask_num_sampled"):
            assert r[key] == ref[r["fname"]][key], key
    for r in rows:  # poisson draws exactly round(W / R) columns
        if r["mask_type"] == "poisson":
            assert int(r["mask_num_sampled"]) == round(
                widths[r["fname"]] / float(r["acceleration"])
            )
    md = (out / "grid.md").read_text()
    assert re.search(r"\| random \| 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\] \| 0\.\d{4} \[", md)
    assert "## PSNR (dB): zero_filled" in md
    for name in ("grid_ssim_zero_filled.png", "grid_ssim_vs_acceleration.png"):
        assert (out / "figures" / name).stat().st_size > 1000
    assert not list((out / "cells").glob("*/reconstructions"))


class Killed(BaseException):
    """Stops the run like a kill: no handler of the CLI catches it."""


def test_a_failure_mid_grid_resumes_and_loses_nothing(tiny_data, tmp_path, monkeypatch) -> None:
    whole = tmp_path / "whole"
    main(_args(tiny_data, whole))
    out = tmp_path / "killed"
    real = grid_module.run_evaluation
    calls = []

    def dies_at_the_third_cell(settings, methods, *selection):
        calls.append(settings.mask_name)
        if len(calls) == 3 and settings.run_dir.parent.parent == out and not resumed_run:
            raise Killed  # as a kill would stop it, mid-cell
        return real(settings, methods, *selection)

    monkeypatch.setattr(grid_module, "run_evaluation", dies_at_the_third_cell)
    resumed_run = False
    with pytest.raises(Killed):
        main(_args(tiny_data, out))
    assert not (out / "grid.csv").exists()
    finished = sorted(p.name for p in (out / "cells").glob("*.csv"))
    assert finished == ["random_2x_cf0.16.csv", "random_4x_cf0.08.csv"]
    stamps = [(out / "cells" / name).stat().st_mtime_ns for name in finished]
    calls.clear()
    resumed_run = True
    main(_args(tiny_data, out))  # the rerun: only the two cells left are evaluated
    assert calls == ["poisson_2x_cf0.16", "poisson_4x_cf0.08"]
    assert [(out / "cells" / n).stat().st_mtime_ns for n in finished] == stamps
    timing = GRID_COLUMNS.index("seconds_per_slice")
    resumed, uninterrupted = _read(out / "grid.csv"), _read(whole / "grid.csv")
    assert len(resumed) == len(uninterrupted) == 8
    for a, b in zip(resumed, uninterrupted, strict=True):
        assert [v for i, v in enumerate(a.values()) if i != timing] == [
            v for i, v in enumerate(b.values()) if i != timing
        ]
    # the same directory with other settings is refused, not mixed
    with pytest.raises(SystemExit):
        main(_args(tiny_data, out, "data.max_volumes=1"))


@pytest.mark.parametrize(
    "override,message",
    [
        ("grid.masks=[]", "error: grid.masks: "),
        ("grid.accelerations=[]", "error: grid.accelerations: "),
        ("grid.accelerations=[1,4]", "error: grid.accelerations: .*1"),
        ("grid.accelerations=[0.5]", "error: grid.accelerations: .*0.5"),
        ("grid.center_fractions=[0.1,1.2]", "error: grid.center_fractions: .*1.2"),
        ("grid.center_fractions=[0.1,0]", "error: grid.center_fractions: .*0"),
        ("grid.center_fractions=[0.1]", "error: grid.center_fractions: "),
        ("grid.center_fractions=[0.6,0.1]", "error: grid.center_fractions: .*0.6"),
        ("grid.masks=[random,zigzag]", "error: grid.masks: .*'zigzag'"),
        ("+grid.seeds=3", "error: grid.seeds: unknown key"),
        ("methods=[]", "error: methods: expected a non-empty list"),
        ("coils.method=sense", "error: coils.method: .*'sense'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(tiny_data, tmp_path, capsys, override, message):
    out = tmp_path / "run"
    args = [a for a in _args(tiny_data, out) if not a.startswith(override.split("=")[0])]
    with pytest.raises(SystemExit) as exc:
        main([*args, override])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(message, err), err
    assert not out.exists() or not [p for p in out.iterdir() if p.name != ".hydra"]


def test_console_module_runs_as_a_subprocess(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mri_recon.cli.robustness", "grid.accelerations=[4,1]",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: grid.accelerations: ") and "1" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("hydra_config_reset")
def test_coils_node_selects_the_estimator(tiny_data, tmp_path) -> None:
    for config in ("eval", "robustness"):
        overrides = [f"data.root={tiny_data}", "coils.method=espirit", "coils.crop=0.8"]
        cfg = compose_job(config, overrides, tmp_path)
        coil_maps = settings_from_config(cfg).coil_maps
        assert isinstance(coil_maps, CoilMaps) and coil_maps.method == "espirit"
        assert coil_maps.settings["crop"] == 0.8 and coil_maps.settings["kernel_size"] is None
        cfg = compose_job(config, [f"data.root={tiny_data}", "coils=auto"], tmp_path)
        coil_maps = settings_from_config(cfg).coil_maps
        assert coil_maps.method == "auto" and coil_maps.min_columns == 24
        assert coil_maps.settings["crop"] == 0.0  # acs.yaml's ESPIRiT settings, crop 0
        default = settings_from_config(compose_job(config, [f"data.root={tiny_data}"], tmp_path))
        assert default.coil_maps.method == "auto"  # the evaluation's default (issue 20.1)


def test_grid_markdown_pairs_each_method_with_the_reference() -> None:
    cells = grid_cells(["random"], [4])
    rows = [
        {"method": m, "mask_type": "random", "acceleration": 4.0, "fname": f, "ssim": v, "psnr": 10 * v}
        for m, values in (("a", (0.5, 0.6, 0.7)), ("b", (0.6, 0.8, 0.7)))
        for f, v in zip(("f1", "f2", "f3"), values, strict=True)
    ]  # fmt: skip
    md = grid_markdown(rows, cells, ["a", "b"], num_resamples=200, reference="a")
    assert "| random | 0.6000 [" in md and "| random | 0.7000 [" in md
    assert "## SSIM: b - a (paired per volume)" in md
    # differences 0.1, 0.2, 0.0; exact sign-flip test: 4 of the 8 sign vectors reach |0.1|
    assert "| random | +0.1000 [+0.0000, +0.2000] p=0.5 |" in md
    assert "## SSIM: a - b" not in md
    assert "paired" not in grid_markdown(rows, cells, ["a", "b"], num_resamples=200)
