"""E2E VarNet through ``train(cfg)``, ``mri-recon-train`` and ``mri-recon-eval`` on tiny
multi-coil data: the same ReconModule, checkpoints, resume, DDP and evaluation as the U-Net."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mri_recon.cli.config import config_dir
from mri_recon.cli.evaluate import evaluate
from mri_recon.cli.evaluate import main as eval_main
from mri_recon.cli.notebook import compose_job
from mri_recon.cli.train import main as train_main
from mri_recon.cli.train import train
from mri_recon.data.synthetic import PRESETS, generate_dataset
from mri_recon.lit.checkpoint import load_reconstructor
from mri_recon.models.varnet import VarNet

BIN = Path(sys.executable).parent
TINY = [
    "debug=fast",
    "data=multicoil",
    "model=varnet",
    "loss=ssim",
    "model.num_cascades=2",
    "model.chans=4",
    "model.pools=2",
    "model.sens_chans=2",
    "model.sens_pools=2",
    "data.sample_rate=1.0",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1.0",
]
VAL_KEYS = ("val/ssim", "val/psnr", "val/nmse")

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


@pytest.fixture(scope="module")
def mc_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny multi-coil data: 4 coils, k-space 128 x 72/76, targets 64 x 64."""
    root = tmp_path_factory.mktemp("tiny_multicoil")
    generate_dataset(root, preset="tiny", challenge="multicoil", seed=0, progress=False)
    return root


def compose_train(root: Path, out: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            "train", overrides=[*TINY, f"data.root={root}", f"paths.output_dir={out}", *overrides]
        )


@pytest.fixture(scope="module")
def two_epochs(mc_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("varnet_two_epochs")
    return out, train(compose_train(mc_root, out, "trainer.max_epochs=2", "validate_ckpt=last"))


def compose_single():
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("train", overrides=["experiment=varnet_singlecoil_cpu"])


def test_configs_compose() -> None:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        fast = compose("train", overrides=["model=varnet_fastmri"])
        cpu = compose("train", overrides=["experiment=varnet_cpu"])
        gpu = compose("train", overrides=["experiment=varnet_fastmri_gpu"])
        unet = compose("train", overrides=["experiment=unet_multicoil_cpu"])
    assert (fast.model.num_cascades, fast.model.chans, fast.model.sens_chans) == (12, 18, 8)
    assert cpu.loss._target_.endswith("SSIMLoss") and gpu.loss._target_.endswith("SSIMLoss")
    assert cpu.model.challenge == "multicoil" and cpu.model.crop_readout
    assert cpu.model.maps == "refined" and cpu.mask.accelerations == [4, 8]
    single = compose_single()
    assert single.model.challenge == "singlecoil" and single.mask.accelerations == [4]
    assert gpu.model.norm == "instance" and gpu.model.num_cascades == 12
    assert unet.data.challenge == "multicoil" and unet.model._target_.endswith("Unet")


def test_training_validates_and_checkpoints(two_epochs: tuple[Path, dict]) -> None:
    out, metrics = two_epochs
    assert metrics["global_step"] == 6
    assert 0.0 < metrics["val/ssim"] < 1.0 and metrics["val/nmse"] > 0
    with open(out / "val_volumes.csv") as f:
        volumes = list(csv.DictReader(f))
    assert len(volumes) == 2 and all(v["num_slices"] == "3" for v in volumes)
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", weights_only=False, map_location="cpu")
    assert ckpt["mri_recon"]["name"] == "varnet"
    assert ckpt["mri_recon"]["net_prefix"] == "reconstructor."
    assert json.loads((out / "metrics.json").read_text())["metrics"] == pytest.approx(metrics)


def test_checkpoint_rebuilds_and_runs_on_other_coils_and_sizes(two_epochs) -> None:
    out, _ = two_epochs
    recon = load_reconstructor(out / "checkpoints" / "best.ckpt")
    assert isinstance(recon, VarNet) and recon.num_cascades == 2 and not recon.training
    assert recon.needs_sens_maps is False and recon.challenge == "multicoil"
    masked = torch.randn(1, 8, 80, 45, dtype=torch.complex64)  # trained on 4 coils, 128 x 72
    mask = torch.zeros(1, 45, dtype=torch.bool)
    mask[:, ::3] = True
    mask[:, 19:26] = True
    with torch.no_grad():
        out_image = recon(masked * mask[:, None, None], mask, None, (40, 40))
    assert out_image.shape == (1, 40, 40) and torch.isfinite(out_image).all()


def test_resume_matches_the_uninterrupted_run(two_epochs, mc_root: Path, tmp_path: Path) -> None:
    _, uninterrupted = two_epochs
    train(compose_train(mc_root, tmp_path, "trainer.max_epochs=1", "validate_ckpt=last"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    resumed = train(
        compose_train(
            mc_root, tmp_path, "trainer.max_epochs=2", "validate_ckpt=last", f"ckpt_path={last}"
        )
    )
    assert resumed["global_step"] == 6
    for key in VAL_KEYS:
        assert resumed[key] == pytest.approx(uninterrupted[key], abs=1e-5), key


def test_ddp_two_cpu_processes(mc_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(BIN / "mri-recon-train"),
            *TINY,
            f"data.root={mc_root}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer=ddp",
            "trainer.devices=2",
            "trainer.accelerator=cpu",
            f"hydra.run.dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "val_volumes.csv") as f:
        volumes = list(csv.DictReader(f))
    assert len(volumes) == 2 and all(v["num_slices"] == "3" for v in volumes)
    assert isinstance(load_reconstructor(out / "checkpoints" / "best.ckpt"), VarNet)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.num_cascades=0", "error: model.num_cascades: "),
        ("data.transform=worker", "error: data.transform: 'worker' gives VarNet zero-filled"),
    ],
)
def test_bad_config_is_one_line(mc_root: Path, tmp_path: Path, capsys, override, message):
    with pytest.raises(SystemExit) as exc:
        train_main([*TINY, f"data.root={mc_root}", override, f"hydra.run.dir={tmp_path}/r"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.fixture(scope="module")
def eight_coil_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Validation data of another coil count and size than the training data: 8 coils,
    k-space 160 x 84 and 160 x 90."""
    root = tmp_path_factory.mktemp("eight_coils")
    config = PRESETS["tiny"].__class__(
        num_train=0, num_val=2, num_test=0, num_slices=2, num_coils=8, height=160,
        widths=(84, 90), target_size=(64, 64),
    )  # fmt: skip
    generate_dataset(root, preset=config, challenge="multicoil", seed=3, progress=False)
    return root


def _eval_cfg(root: Path, out: Path, *overrides: str) -> DictConfig:
    return compose_job(
        "eval",
        [
            f"data.root={root}",
            "data.challenge=multicoil",
            "num_figures=0",
            "progress=false",
            "device=cpu",
            "stats.num_resamples=50",
            *overrides,
        ],
        out,
    )


def test_evaluated_next_to_the_baselines_on_other_data(two_epochs, eight_coil_root, tmp_path):
    out, _ = two_epochs
    ckpt = out / "checkpoints" / "best.ckpt"
    report = evaluate(
        _eval_cfg(eight_coil_root, tmp_path / "run", "methods=[zero_filled,tv,varnet]",
                  f"+checkpoints.varnet={ckpt}", "tv.max_iters=5")
    )  # fmt: skip
    methods = [r["method"] for r in report.rows]
    assert methods.count("varnet") == 2 and methods.count("tv") == 2
    assert all(np.isfinite(r["ssim"]) for r in report.rows)
    assert "varnet" in report.markdown


def test_wrong_challenge_and_wrong_method_are_one_line(two_epochs, tmp_path, capsys) -> None:
    out, _ = two_epochs
    ckpt = out / "checkpoints" / "best.ckpt"
    single = tmp_path / "single"
    generate_dataset(single, "tiny", challenge="singlecoil", progress=False, splits=("val",))
    cases = [
        (
            [f"data.root={single}", "methods=[varnet]", f"+checkpoints.varnet={ckpt}"],
            r"error: checkpoints\.varnet: .*best\.ckpt: a multicoil model cannot reconstruct "
            r"singlecoil data",
        ),
        (
            [f"data.root={single}", "methods=[unet]", f"ckpt_path={ckpt}"],
            r"error: ckpt_path: .*best\.ckpt: holds a VarNet, not a U-Net",
        ),
    ]
    for i, (overrides, message) in enumerate(cases):
        with pytest.raises(SystemExit) as exc:
            eval_main([*overrides, f"hydra.run.dir={tmp_path}/e{i}"])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and re.match(message, err), err
        assert not (tmp_path / f"e{i}" / "per_volume.csv").exists()
