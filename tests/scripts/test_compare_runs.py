"""scripts/compare_runs.py, mri_recon.cli.run_configs, mri_recon.viz.logs and mri_recon.viz.convergence
on fake run directories in Lightning's format."""

from __future__ import annotations

import csv
import math
from functools import partial
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from omegaconf import OmegaConf

from mri_recon.cli import run_configs as cli_runs
from mri_recon.viz import convergence
from mri_recon.viz import logs as runs_lib

COLUMNS = [
    "epoch",
    "step",
    "train/loss_epoch",
    "train/loss_step",
    "val/nmse",
    "val/psnr",
    "val/ssim",
]


def write_lightning_csv(
    path: Path,
    losses: list[float],
    val: list[tuple[float, float, float]],
    steps_per_epoch: int,
    loss_key: str = "train/loss_step",
    first_step: int = 0,
    post_fit: tuple[float, float, float] | None = None,
) -> None:
    """Rows as CSVLogger writes them: one per log call, empty cells elsewhere; ``post_fit``
    adds the validation ``train()`` logs after fit (next epoch, step = global step)."""
    columns = [c if c != "train/loss_step" else loss_key for c in COLUMNS]
    rows = []
    for i, loss in enumerate(losses):
        step = first_step + i
        epoch = step // steps_per_epoch
        rows.append({"epoch": epoch, "step": step, loss_key: loss})
        if (step + 1) % steps_per_epoch == 0:
            nmse, psnr, ssim = val[epoch - first_step // steps_per_epoch]
            rows.append(
                {"epoch": epoch, "step": step, "val/nmse": nmse, "val/psnr": psnr, "val/ssim": ssim}
            )
    if post_fit is not None:
        nmse, psnr, ssim = post_fit
        step = first_step + len(losses)
        rows.append(
            {
                "epoch": step // steps_per_epoch,
                "step": step,
                "val/nmse": nmse,
                "val/psnr": psnr,
                "val/ssim": ssim,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_hydra(run_dir: Path, overrides: list[str], optim: str) -> None:
    """.hydra/ as Hydra writes it; optim.lr is chosen through hydra:runtime.choices."""
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    config = {
        "study": {"lr_point": "mid", "lr_grid": {"sgd": {"mid": 0.03}, "adam": {"mid": 0.001}}},
        "optim": {
            "_target_": "torch.optim.X",
            "_partial_": True,
            "lr": "${study.lr_grid.${hydra:runtime.choices.optim}.${study.lr_point}}",
        },
        "paths": {"output_dir": "${hydra:runtime.output_dir}"},
        "data": {"batch_size": 2 if optim == "sgd" else 8},
    }
    OmegaConf.save(OmegaConf.create(config), hydra_dir / "config.yaml")
    hydra = {"hydra": {"runtime": {"choices": {"optim": optim}, "output_dir": str(run_dir)}}}
    OmegaConf.save(OmegaConf.create(hydra), hydra_dir / "hydra.yaml")


@pytest.fixture
def study(tmp_path: Path) -> dict[str, Path]:
    """A multirun of two jobs (sgd, adam), one job that crashed, and a resumed single run."""
    multirun = tmp_path / "multiruns" / "2024-01-01_00-00-00"
    common = ["experiment=ablation_optim"]
    sgd, adam = multirun / "0", multirun / "1"
    write_hydra(sgd, common + ["optim=sgd"], "sgd")
    write_lightning_csv(
        sgd / "csv" / "version_0" / "metrics.csv",
        losses=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        val=[(0.2, 20.0, 0.5), (0.1, 23.0, 0.7)],
        steps_per_epoch=5,
        post_fit=(0.1, 23.0, 0.7),
    )
    write_hydra(adam, common + ["optim=adam"], "adam")
    write_lightning_csv(
        adam / "csv" / "version_0" / "metrics.csv",
        losses=[0.5] * 9 + [math.nan],
        val=[(0.05, 25.0, 0.8), (math.nan, math.nan, math.nan)],
        steps_per_epoch=5,
    )
    write_hydra(multirun / "2", common + ["optim=rmsprop"], "rmsprop")  # crashed: no log
    (multirun / "multirun.yaml").write_text("{}\n")
    # A resumed run: version_1 continues at step 4 and re-logs step 4 (later file wins).
    single = tmp_path / "runs" / "single"
    write_hydra(
        single, ["model.norm=batch", "data.batch_size=1", "~callbacks.progress_bar"], "adam"
    )
    write_lightning_csv(
        single / "csv" / "version_0" / "metrics.csv",
        losses=[2.0] * 4 + [9.0],
        val=[(0.9, 5.0, 0.1)],
        steps_per_epoch=5,
        loss_key="train/loss",
    )
    write_lightning_csv(
        single / "csv" / "version_1" / "metrics.csv",
        losses=[1.0] * 6,
        val=[(0.3, 15.0, 0.4), (0.25, 16.0, 0.45)],
        steps_per_epoch=5,
        loss_key="train/loss",
        first_step=4,
    )
    return {"multirun": multirun, "single": single, "root": tmp_path}


def test_read_metrics_csv_sparse_rows(study):
    curves = runs_lib.read_metrics_csv(
        study["multirun"] / "0" / "csv" / "version_0" / "metrics.csv"
    )
    assert set(curves) == {"train/loss_step", "val/nmse", "val/psnr", "val/ssim"}
    np.testing.assert_array_equal(curves["val/ssim"].step, [4, 9, 10])  # raw: with post-fit
    np.testing.assert_allclose(curves["val/ssim"].value, [0.5, 0.7, 0.7])
    np.testing.assert_array_equal(curves["val/ssim"].epoch, [0, 1, 2])
    np.testing.assert_array_equal(curves["train/loss_step"].step, np.arange(10))


def test_read_metrics_csv_bad_cell_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,val/ssim\n0,0,0.5\n0,1,abc\n")
    with pytest.raises(ValueError, match=r"metrics\.csv: line 3"):
        runs_lib.read_metrics_csv(path)
    path.write_text("epoch,val/ssim\n0,0.5\n")
    with pytest.raises(ValueError, match="no 'step' column"):
        runs_lib.read_metrics_csv(path)


def test_real_csvlogger_format(tmp_path):
    """The parser reads what Lightning's own CSVLogger writes (on_step + on_epoch names)."""
    from pytorch_lightning.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="csv")
    for step in range(6):
        logger.log_metrics({"train/loss_step": 1.0 / (step + 1), "epoch": step // 3}, step=step)
        if step % 3 == 2:
            logger.log_metrics({"val/ssim": 0.1 * step, "epoch": step // 3}, step=step)
            logger.log_metrics({"train/loss_epoch": 0.5, "epoch": step // 3}, step=step)
            logger.save()
    logger.finalize("success")
    run = runs_lib.load_run(tmp_path)
    np.testing.assert_allclose(run.curves["val/ssim"].value, [0.2, 0.5])
    assert run.train_loss() is run.curves["train/loss_step"]
    np.testing.assert_allclose(run.train_loss().value, 1.0 / np.arange(1, 7))


def test_table_values_and_labels(study):
    result = cli_runs.compare_runs([study["multirun"], study["single"]], study["root"] / "out")
    assert [r["label"] for r in result.rows] == [
        "experiment=ablation_optim optim=sgd",
        "experiment=ablation_optim optim=adam",
        "model.norm=batch data.batch_size=1 ~callbacks.progress_bar",
    ]
    sgd, adam, single = result.rows
    assert (sgd["steps"], sgd["final_val/ssim"], sgd["best_val/ssim"]) == (10, 0.7, 0.7)
    # The post-fit validation (epoch 2, step 10) is not a point of the curve.
    np.testing.assert_array_equal(result.runs[0].curves["val/ssim"].step, [4, 9])
    assert result.runs[0].post_fit == {"val/nmse": 0.1, "val/psnr": 23.0, "val/ssim": 0.7}
    assert sgd["checkpoint_val/ssim"] == 0.7 and math.isnan(adam["checkpoint_val/ssim"])
    assert sgd["max_drop_val/ssim"] == 0.0 and math.isnan(adam["max_drop_val/ssim"])  # one finite
    assert (sgd["final_val/nmse"], sgd["best_val/nmse"], sgd["best_val/psnr"]) == (0.1, 0.1, 23.0)
    assert sgd["final_train/loss"] == pytest.approx(0.1)  # last 10% of 10 points = 1 point
    # Diverged run: final is NaN, best ignores NaN.
    assert math.isnan(adam["final_val/ssim"]) and adam["best_val/ssim"] == 0.8
    assert math.isnan(adam["final_train/loss"])
    # Resumed run: both versions merged, version_1 overrides step 4 (val/ssim 0.1 -> 0.4).
    run = result.runs[2]
    np.testing.assert_array_equal(run.curves["val/ssim"].step, [4, 9])
    assert (single["best_val/ssim"], single["final_val/ssim"], single["steps"]) == (0.45, 0.45, 10)
    assert run.train_loss() is run.curves["train/loss"] and run.train_loss().value[4] == 1.0
    assert len(result.skipped) == 1 and "/2: no metrics.csv" in result.skipped[0]


def test_written_files(study):
    out = study["root"] / "out"
    result = cli_runs.compare_runs([study["multirun"]], out)
    assert sorted(p.name for p in out.iterdir()) == [
        "convergence_train_loss.png",
        "convergence_val_ssim.png",
        "final_metrics.csv",
        "final_metrics.md",
    ]
    assert (out / "final_metrics.md").read_text() == result.markdown
    assert (
        "| optim=sgd | 10 | 0.7 | 0.7 | 23.00 | 23.00 | 0.1 | 0.1 | 0.1 | 0.7 |" in result.markdown
    )
    assert "| optim=adam | 10 | - | 0.8 |" in result.markdown
    with open(out / "final_metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [row["label"] for row in table] == ["optim=sgd", "optim=adam"]
    assert float(table[0]["best_val/psnr"]) == 23.0 and table[1]["final_val/ssim"] == ""
    for name in ("convergence_val_ssim.png", "convergence_train_loss.png"):
        image = mpimg.imread(out / name)[..., :3]
        for color in ("#1f77b4", "#ff7f0e"):  # C0 (sgd) and C1 (adam): one curve per run
            rgb = np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
            assert (np.abs(image - rgb).max(axis=-1) < 0.05).sum() > 50, (name, color)


def test_label_keys_resolve_hydra_choices(study):
    runs, _ = runs_lib.load_runs(
        [study["multirun"]], partial(cli_runs.run_config_values, keys=["optim", "optim.lr"])
    )
    assert [r.label for r in runs] == ["optim=sgd optim.lr=0.03", "optim=adam optim.lr=0.001"]


def test_duplicate_labels_get_directory_names(study):
    runs, _ = runs_lib.load_runs([study["multirun"] / "0", study["multirun"] / "0"])
    assert [r.label for r in runs] == ["experiment=ablation_optim optim=sgd [0]"] * 2


def test_cli_prints_table_and_names_bad_path(study, capsys, monkeypatch, script_module):
    script = script_module("compare_runs")
    monkeypatch.chdir(study["root"])
    assert script.main([str(study["multirun"])]) == 0
    assert "| label | steps |" in capsys.readouterr().out
    assert (study["root"] / "compare" / "final_metrics.csv").is_file()
    empty = study["root"] / "empty"
    empty.mkdir()
    assert script.main([str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(empty) in err and "holds no run" in err


def test_samples_axis_multiplies_steps_by_batch_size(study):
    out = study["root"] / "out"
    result = cli_runs.compare_runs([study["multirun"]], out, samples_key="data.batch_size")
    assert (out / "convergence_val_ssim_samples.png").is_file()
    assert (out / "convergence_train_loss_samples.png").is_file()
    fig = convergence.plot_convergence(result.runs, "val/ssim", x_scale=[2, 8], x_shift=1)
    lines = [line for line in fig.axes[0].lines if line.get_label() in ("optim=sgd", "optim=adam")]
    np.testing.assert_array_equal(lines[0].get_xdata(), [10, 20])  # steps 4, 9 (+1) x batch 2
    np.testing.assert_array_equal(lines[1].get_xdata(), [40, 80])  # steps 4, 9 (+1) x batch 8
    with pytest.raises(
        ValueError, match=r"one entry per run \(2 runs\), got lengths \{'x_scale': 1\}"
    ):
        convergence.plot_convergence(result.runs, "val/ssim", x_scale=[2])
    with pytest.raises(ValueError, match=r"model.chans: must be a number in \(0, inf\), got None"):
        cli_runs.compare_runs([study["multirun"]], out, samples_key="model.chans")


def test_latest_multirun_and_missing_logs(study, tmp_path):
    parent = study["multirun"].parent
    assert runs_lib.latest_multirun(parent) == study["multirun"]
    (parent / "2025-01-01_00-00-00" / "0" / ".hydra").mkdir(parents=True)
    assert runs_lib.latest_multirun(parent).name == "2025-01-01_00-00-00"
    (parent / "2026-01-01_00-00-00").mkdir()  # no job inside: not a multirun
    assert runs_lib.latest_multirun(parent).name == "2025-01-01_00-00-00"
    assert runs_lib.latest_multirun(tmp_path / "absent") is None
    with pytest.raises(runs_lib.MissingLogError, match="2: no metrics.csv"):
        runs_lib.load_runs([study["multirun"] / "2"])  # named explicitly: an error


def test_bad_yaml_is_one_line_naming_the_file(study):
    run = study["multirun"] / "0"
    (run / ".hydra" / "overrides.yaml").write_text("- [optim=sgd\n")
    with pytest.raises(ValueError, match=r"0/.hydra/overrides.yaml: not valid YAML") as err:
        runs_lib.read_overrides(run)
    assert "\n" not in str(err.value)
    (run / ".hydra" / "overrides.yaml").write_text("optim: sgd\n")
    with pytest.raises(ValueError, match="expected a YAML list"):
        runs_lib.read_overrides(run)
    (run / ".hydra" / "config.yaml").write_text("optim: {lr: [\n")
    with pytest.raises(ValueError, match=r"0/.hydra: unreadable config") as err:
        cli_runs.run_config_values(run, ["optim.lr"])
    assert "\n" not in str(err.value)


def test_write_comparison_checks_batch_sizes(study, tmp_path):
    out = tmp_path / "cmp"
    runs, _ = runs_lib.load_runs([study["multirun"]])
    with pytest.raises(ValueError, match="1 batch sizes for 2 runs"):
        convergence.write_comparison(runs, out, batch_sizes=[4])
    with pytest.raises(ValueError, match=r"data.batch_size: must be a number in \(0, inf\), got 0"):
        convergence.write_comparison(
            runs, out, batch_sizes=[4, 0], batch_size_name="data.batch_size"
        )
    with pytest.raises(ValueError, match="no runs"):
        convergence.write_comparison([], out)
    assert not out.exists()  # validated before anything is written
    result = convergence.write_comparison(runs, out, batch_sizes=[4, 8])
    assert {p.name for p in out.iterdir()} == {
        "convergence_val_ssim.png",
        "convergence_train_loss.png",
        "convergence_val_ssim_samples.png",
        "convergence_train_loss_samples.png",
        "final_metrics.md",
        "final_metrics.csv",
    }
    assert [r["label"] for r in result.rows] == ["optim=sgd", "optim=adam"]


def test_run_colors_are_distinct(study):
    assert convergence.run_colors(3) == ["C0", "C1", "C2"]
    for count in (12, 20, 21, 40):
        assert len(set(convergence.run_colors(count))) == count
    runs, _ = runs_lib.load_runs([study["multirun"]] * 6)  # 12 runs (labels made unique)
    fig = convergence.plot_convergence(runs, "val/ssim")
    drawn = [line.get_color() for line in fig.axes[0].lines if not line.get_label().startswith("_")]
    assert len(drawn) == 12 and len(set(drawn)) == 12
    legend = fig.axes[0].get_legend()
    assert legend.get_bbox_to_anchor().bounds[0] > fig.axes[0].get_window_extent().x1 - 1  # outside


def test_max_drop_is_the_largest_fall_between_validations():
    def curve(values):
        n = len(values)
        return runs_lib.Curve(np.arange(n), np.array(values, dtype=float), np.zeros(n))

    assert runs_lib.max_drop(curve([0.5, 0.7, 0.6, 0.65, 0.45, 0.8])) == pytest.approx(0.2)
    assert runs_lib.max_drop(curve([0.5, math.nan, 0.4])) == pytest.approx(0.1)  # NaN skipped
    assert runs_lib.max_drop(curve([0.1, 0.2, 0.3])) == 0.0
    assert math.isnan(runs_lib.max_drop(curve([0.3]))) and math.isnan(runs_lib.max_drop(None))
