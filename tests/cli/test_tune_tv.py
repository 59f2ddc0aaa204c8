"""``mri-recon-tune-tv``: the lambda grid, the sweep (same numbers as the evaluation), and
``tv_lambda.yaml``."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mri_recon.cli import evaluate as eval_cli
from mri_recon.cli.config import config_dir
from mri_recon.cli.errors import ConfigError
from mri_recon.cli.tune_tv import lambda_grid, main
from mri_recon.data.synthetic import generate_dataset
from mri_recon.evaluation.tuning import best_lambda, central_slices


@pytest.fixture(scope="module")
def val_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_val")
    generate_dataset(root, "tiny", challenge="singlecoil", seed=1, progress=False, splits=("val",))
    return root


def _compose(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(name, overrides=overrides)


def test_default_grid_is_log_spaced_around_tv_default() -> None:
    cfg = _compose("tune_tv", [])
    tv_default = _compose("eval", []).tv.lam  # the one source: configs/tv/default.yaml
    lams = lambda_grid(cfg)
    assert len(lams) == cfg.num_lams and lams == sorted(lams)
    assert tv_default in lams and lams[0] == pytest.approx(tv_default / cfg.lam_span, rel=1e-2)
    ratios = [b / a for a, b in itertools.pairwise(lams)]
    assert max(ratios) / min(ratios) < 1.02  # equal steps on a log scale (3-digit rounding)
    assert lambda_grid(_compose("tune_tv", ["lams=[0.1,0.01,0.1]"])) == [0.01, 0.1]
    with pytest.raises(ConfigError, match=r"^lams: must be a number in \(0, inf\), got -1$"):
        lambda_grid(_compose("tune_tv", ["lams=[0.1,-1]"]))
    for bad in ("lams=[]", "lams=[0.1,true]", "lams=0.1"):
        with pytest.raises(ConfigError, match="^lams: "):
            lambda_grid(_compose("tune_tv", [bad]))


def test_central_slices_and_selection() -> None:
    assert central_slices(10, 4) == slice(3, 7)
    assert central_slices(3, None) == slice(0, 3) == central_slices(3, 8)
    points = [{"lam": 1, "ssim": 0.5, "nmse": 0.2}, {"lam": 2, "ssim": 0.7, "nmse": 0.3}]
    assert best_lambda(points, "ssim")["lam"] == 2 and best_lambda(points, "nmse")["lam"] == 1


def test_tune_writes_yaml_and_matches_the_evaluation(val_root, tmp_path, capsys) -> None:
    main(
        [
            f"data.root={val_root}",
            "mask=random_4x",
            "lams=[0.0005,0.02]",
            "tv.max_iters=3",
            "data.max_volumes=1",
            "max_slices_per_volume=null",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'tune'}",
        ]
    )
    out = capsys.readouterr().out
    with open(tmp_path / "tune/tv_lambda_curve.csv", newline="") as f:
        curve = {float(r["lam"]): r for r in csv.DictReader(f)}
    assert sorted(curve) == [0.0005, 0.02]
    best = max(curve, key=lambda lam: float(curve[lam]["ssim"]))
    chosen = OmegaConf.load(tmp_path / "tune/tv_lambda.yaml")
    assert OmegaConf.to_container(chosen) == {"tv": {"lam": best}}
    assert f"tv.lam={best!r}" in out.splitlines()[-1]
    # the printed override feeds the evaluation, whose TV numbers on the same volume and
    # mask are the tuner's own (the tuner reuses the evaluation's pieces)
    cfg = _compose(
        "eval",
        [
            f"data.root={val_root}",
            "methods=[tv]",
            f"tv.lam={best!r}",
            "tv.max_iters=3",
            "data.max_volumes=1",
            "num_figures=0",
            "progress=false",
            f"paths.output_dir={tmp_path / 'eval'}",
            "evaluation.mask_name=random_4x",  # Hydra's choice in a Hydra job
        ],
    )
    (row,) = eval_cli.evaluate(cfg).rows
    assert row["ssim"] == pytest.approx(float(curve[best]["ssim"]), rel=1e-12)
    assert row["psnr"] == pytest.approx(float(curve[best]["psnr"]), rel=1e-12)


def test_tune_on_a_split_without_targets_fails(tmp_path, fastmri_split, capsys) -> None:
    fastmri_split(tmp_path / "data", split="test", widths=(36,))
    with pytest.raises(SystemExit) as exc:
        main(
            [
                f"data.root={tmp_path / 'data'}",
                "data.split=test",
                "lams=[0.01]",
                f"hydra.run.dir={tmp_path / 'run'}",
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "error: data.split: 'test' files have no targets to tune against; use val (or train)"
    )
    assert not (tmp_path / "run/tv_lambda.yaml").exists()


def test_tune_multicoil_with_espirit_maps_through_the_evaluation_loop(
    tmp_path, fastmri_split, monkeypatch, capsys
) -> None:
    """``coils=espirit`` reaches the sweep (the maps TV is tuned with), and the tuner walks
    the evaluation's one volume loop: ``data.prescan=header`` checks values on load."""
    from mri_recon.evaluation import run as run_module
    from mri_recon.physics import coils

    fastmri_split(tmp_path / "data", challenge="multicoil", split="val", widths=(36,))
    calls, loads = [], []
    real_espirit, real_load = coils._espirit, run_module.load_volume
    monkeypatch.setattr(coils, "_espirit", lambda *a, **k: calls.append(1) or real_espirit(*a, **k))
    monkeypatch.setattr(
        run_module,
        "load_volume",
        lambda info, check_values: loads.append(check_values) or real_load(info, check_values),
    )
    main(
        [
            f"data.root={tmp_path / 'data'}",
            "data.challenge=multicoil",
            "data.prescan=header",
            "coils=espirit",
            "lams=[0.001,0.01]",
            "tv.max_iters=2",
            "max_slices_per_volume=1",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'tune'}",
        ]
    )
    assert calls and loads == [True]  # ESPIRiT maps; values checked on load (prescan=header)
    with open(tmp_path / "tune/tv_lambda_curve.csv", newline="") as f:
        curve = list(csv.DictReader(f))
    assert [float(r["lam"]) for r in curve] == [0.001, 0.01]
    assert all(0 < float(r["ssim"]) <= 1 for r in curve)
    assert "tv.lam=" in capsys.readouterr().out


def test_select_by_foreground_ssim(val_root, tmp_path, capsys) -> None:
    """Issue 20: select_by=ssim_fg scores each lambda's SSIM inside the target's foreground
    (metrics.optional.ssim_fg, the volume max as data range) and picks the highest."""
    main(
        [
            f"data.root={val_root}",
            "lams=[0.0005,0.05]",
            "tv.max_iters=3",
            "data.max_volumes=1",
            "select_by=ssim_fg",
            "progress=false",
            f"hydra.run.dir={tmp_path / 'tune'}",
        ]
    )
    with open(tmp_path / "tune/tv_lambda_curve.csv", newline="") as f:
        curve = {float(r["lam"]): float(r["ssim_fg"]) for r in csv.DictReader(f)}
    assert sorted(curve) == [0.0005, 0.05] and curve[0.0005] != curve[0.05]
    best = max(curve, key=curve.get)
    assert OmegaConf.load(tmp_path / "tune/tv_lambda.yaml").tv.lam == best
    assert f"tv.lam={best!r}" in capsys.readouterr().out.splitlines()[-1]
