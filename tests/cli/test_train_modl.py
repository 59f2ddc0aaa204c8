"""MoDL through ``train(cfg)`` and ``mri-recon-eval`` on the tiny presets: the unchanged
ReconModule trains it (multi- and single-coil), its checkpoint evaluates as a named method
beside the baselines, and bad values end in one line before anything is written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mri_recon.cli.config import config_dir
from mri_recon.cli.evaluate import evaluate
from mri_recon.cli.notebook import compose_job
from mri_recon.cli.train import main as train_main
from mri_recon.cli.train import train
from mri_recon.data.synthetic import generate_dataset
from mri_recon.lit.checkpoint import load_reconstructor
from mri_recon.models.modl import MoDL

TINY = [
    "debug=fast",
    "logger=none",
    "model=modl",
    "loss=ssim",
    "model.num_unrolls=2",
    "model.chans=4",
    "model.num_layers=3",
    "model.cg_iterations=3",
    "data.sample_rate=1.0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1.0",
    "validate_ckpt=last",
]

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


@pytest.fixture(scope="module")
def mc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny_multicoil_modl")
    generate_dataset(root, preset="tiny", challenge="multicoil", seed=0, progress=False)
    return root


def compose_train(root: Path, out: Path, data: str = "multicoil") -> DictConfig:
    overrides = [*TINY, f"data={data}", f"data.root={root}", f"paths.output_dir={out}"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.fixture(scope="module")
def mc_run(mc_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("modl_mc")
    return out, train(compose_train(mc_root, out))


def test_configs_compose() -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        paper = compose("train", overrides=["model=modl", "data=multicoil"])
        cpu = compose("train", overrides=["experiment=modl_cpu"])
    m = paper.model
    assert (m.num_unrolls, m.chans, m.num_layers, m.cg_iterations) == (10, 64, 5, 10)
    assert (m.lam_init, m.norm, m.challenge) == (0.05, "batch", "multicoil")
    assert cpu.data.challenge == "multicoil" and cpu.model.crop_readout
    assert cpu.loss._target_.endswith("SSIMLoss") and cpu.torch_threads == 1


def test_multicoil_trains_and_its_checkpoint_evaluates(mc_run, mc_root, tmp_path) -> None:
    out, metrics = mc_run
    assert metrics["global_step"] == 2 and 0 < metrics["val/ssim"] < 1
    ckpt = out / "checkpoints" / "best.ckpt"
    recon = load_reconstructor(ckpt, challenge="multicoil")
    assert isinstance(recon, MoDL) and recon.num_unrolls == 2 and not recon.training
    # evaluated with the maps it trained with (its own ACS ratio), whatever the coils node
    assert recon.name == "modl" and not recon.needs_sens_maps
    cfg = compose_job(
        "eval",
        [
            f"data.root={mc_root}",
            "data.challenge=multicoil",
            "num_figures=0",
            "progress=false",
            "device=cpu",
            "stats.num_resamples=20",
            "methods=[zero_filled,modl]",
            f"+checkpoints.modl={ckpt}",
            "coils=espirit",  # the classical methods' maps: not MoDL's
        ],
        tmp_path / "eval",
    )
    report = evaluate(cfg)
    rows = [r for r in report.rows if r["method"] == "modl"]
    assert len(rows) == 2 and all(np.isfinite(r["ssim"]) for r in rows)
    # the evaluation's volume-level SSIM is what validation measured on the same volumes
    val_ssim = np.mean([r["ssim"] for r in rows])
    assert val_ssim == pytest.approx(metrics["val/ssim"], abs=2e-3)


def test_singlecoil_trains(tiny_data: Path, tmp_path: Path) -> None:
    metrics = train(compose_train(tiny_data, tmp_path, "singlecoil"))
    assert metrics["global_step"] == 2 and 0 < metrics["val/ssim"] < 1
    recon = load_reconstructor(tmp_path / "checkpoints" / "best.ckpt")
    assert isinstance(recon, MoDL) and recon.challenge == "singlecoil"
    masked = torch.zeros(1, 1, 32, 24, dtype=torch.complex64)
    with pytest.raises(ValueError, match="singlecoil model"):
        recon(torch.zeros(1, 2, 32, 24, dtype=torch.complex64), torch.ones(1, 24, dtype=bool),
              None, (16, 16))  # fmt: skip
    assert recon(masked, torch.ones(1, 24, dtype=bool), None, (16, 16)).shape == (1, 16, 16)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.lam_init=-0.05", "error: model.lam_init: must be a number in (0, inf), got -0.05"),
        ("model.cg_iterations=0", "error: model.cg_iterations: must be"),
        ("model.dc_gradient=exact", "error: model.dc_gradient: must be one of"),
    ],
)
def test_bad_config_is_one_line(mc_root: Path, tmp_path: Path, capsys, override, message):
    with pytest.raises(SystemExit) as exc:
        train_main(
            [
                *TINY,
                "data=multicoil",
                f"data.root={mc_root}",
                override,
                f"hydra.run.dir={tmp_path}/r",
            ]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r" / "checkpoints").exists()
