"""SSDU through ``train(cfg)`` and ``mri-recon-train`` on the tiny presets: a run on training
files whose targets were removed trains (multi-coil VarNet, the experiment's config), single-
coil and MoDL compose, its checkpoint is the network's, and bad values end in one line before
anything is written."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from mri_recon.cli.config import config_dir
from mri_recon.cli.train import main as train_main
from mri_recon.cli.train import train
from mri_recon.data.synthetic import generate_dataset
from mri_recon.lit.checkpoint import load_reconstructor
from mri_recon.models.varnet import VarNet

TINY = [
    "debug=fast",
    "logger=none",
    "data.sample_rate=1.0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=1.0",
    "validate_ckpt=last",
]
SMALL_VARNET = [
    "model.num_cascades=2",
    "model.chans=4",
    "model.pools=2",
    "model.sens_chans=2",
    "model.sens_pools=2",
]

pytestmark = pytest.mark.usefixtures("one_torch_thread", "hydra_config_reset")


@pytest.fixture(scope="module")
def targetless_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny multi-coil data with every training file's target (and attr max) removed,
    and the first validation file's."""
    root = tmp_path_factory.mktemp("tiny_multicoil_ssdu")
    generate_dataset(root, preset="tiny", challenge="multicoil", seed=0, progress=False)
    first_val = sorted((root / "multicoil_val").glob("*.h5"))[0]
    for path in [*sorted((root / "multicoil_train").glob("*.h5")), first_val]:
        with h5py.File(path, "a") as hf:
            del hf["reconstruction_rss"]
            del hf.attrs["max"]
    return root


def compose_train(root: Path, out: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            "train", overrides=[*TINY, f"data.root={root}", f"paths.output_dir={out}", *overrides]
        )


def test_ssdu_trains_on_files_without_targets(targetless_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = compose_train(
        targetless_root, tmp_path, "experiment=ssdu_varnet_cpu", *SMALL_VARNET,
        "trainer.max_epochs=2", "data.num_workers=0",
    )  # fmt: skip
    assert cfg.training.rho == 0.4 and cfg.loss._target_.endswith("SSDULoss")
    metrics = train(cfg)
    assert metrics["epoch"] == 2 and torch.isfinite(torch.tensor(metrics["train/loss_epoch"]))
    assert 0 < metrics["val/loss"] < 4 and 0 < metrics["val/ssim"] <= 1
    scored = list(csv.DictReader((tmp_path / "val_volumes.csv").open()))
    val_files = sorted((targetless_root / "multicoil_val").glob("*.h5"))
    assert [r["fname"] for r in scored] == [p.name for p in val_files[1:]]  # those with targets
    rows = list(csv.DictReader((tmp_path / "masks.csv").open()))
    assert {r["epoch"] for r in rows} == {"0", "1"}  # the splits' seeds, per epoch and slice
    # the checkpoint is the VarNet's own: it evaluates as any VarNet checkpoint does
    recon = load_reconstructor(tmp_path / "checkpoints" / "last.ckpt")
    assert isinstance(recon, VarNet) and recon.name == "varnet"
    fresh = VarNet(**{k: cfg.model[k] for k in ("num_cascades", "chans", "pools")})
    moved = [not torch.equal(a, b) for a, b in zip(recon.cascades.parameters(),
                                                     fresh.cascades.parameters(), strict=True)]  # fmt: skip
    assert any(moved)


def test_supervised_training_refuses_the_same_files_in_one_line(
    targetless_root: Path, tmp_path: Path, capfd: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main([*TINY, "experiment=varnet_cpu", f"data.root={targetless_root}",
                    f"hydra.run.dir={tmp_path / 'run'}"])  # fmt: skip
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 1
    assert len(lines) == 1 and "no target 'reconstruction_rss' (required in the train" in lines[0]


def test_ssdu_trains_a_single_coil_varnet(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate_dataset(root, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    shutil.rmtree(root / "singlecoil_test", ignore_errors=True)
    cfg = compose_train(root, tmp_path / "run", "model=varnet", "training=ssdu", *SMALL_VARNET,
                        "training.num_splits=2", "training.selection=uniform")  # fmt: skip
    metrics = train(cfg)
    assert metrics["global_step"] == 3 and 0 < metrics["val/loss"] < 4


def test_ssdu_trains_modl(targetless_root: Path, tmp_path: Path) -> None:
    cfg = compose_train(
        targetless_root, tmp_path, "data=multicoil", "model=modl", "training=ssdu",
        "model.num_unrolls=2", "model.chans=4", "model.num_layers=3", "model.cg_iterations=3",
    )  # fmt: skip
    metrics = train(cfg)
    assert metrics["global_step"] == 3 and 0 < metrics["val/loss"] < 4


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model=varnet", "training.rho=0"], "error: training.rho: must be a number in (0, 1)"),
        (["model=modl", "training.rho=1.0"], "error: training.rho: must be a number in (0, 1)"),
        (
            ["model=varnet", "training.num_splits=0"],
            "error: training.num_splits: must be an int >= 1",
        ),
        (["model=varnet", "training.selection=poisson"], "error: training.selection: "),
        ([], "error: model: Unet has no data consistency on k-space points"),  # model=unet
        (
            ["model=varnet", "loss=ssim"],
            "error: loss: mri_recon.models.losses.SSIMLoss does not fit",
        ),
    ],
)
def test_bad_ssdu_values_are_one_line_before_anything_is_written(
    overrides: list[str], expected: str, targetless_root: Path, tmp_path: Path,
    capfd: pytest.CaptureFixture,
) -> None:  # fmt: skip
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train_main([*TINY, "data=multicoil", "training=ssdu", f"data.root={targetless_root}",
                    f"hydra.run.dir={run}", *overrides])  # fmt: skip
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert not run.exists()
