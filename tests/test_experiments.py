"""The study configs: experiment=ablation_optim / ablation_norm (and their _large variants)
compose with their sweeps, every job of a sweep builds the intended optimizer / network on
the same data and budget, and a tiny version of each sweep runs through ``mri-recon-train -m``
and ``scripts/compare_runs.py``."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mri_recon.cli.config import config_dir
from mri_recon.cli.notebook import compose_train_config
from mri_recon.cli.run_configs import run_config_values
from mri_recon.viz.logs import load_runs

REPO = Path(__file__).resolve().parents[1]
OPTIMIZERS = {  # optim config -> (class, momentum)
    "sgd": (torch.optim.SGD, 0.0),
    "sgd_momentum": (torch.optim.SGD, 0.9),
    "rmsprop": (torch.optim.RMSprop, 0.0),
    "adam": (torch.optim.Adam, None),
}
NORMS = ("group", "batch", "instance", "layer", "none")
# What must be equal across the jobs of a study: same model, data, masks and budget.
SHARED_KEYS = (
    "seed",
    "data.sample_rate",
    "data.val_sample_rate",
    "data.challenge",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.limit_train_batches",
    "module.train_crop_size",
    "mask.accelerations",
    "mask.center_fractions",
    "loss._target_",
    "scheduler",
)


def compose_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir(), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The jobs the basic sweeper launches for ``-m experiment=<experiment>``."""
    params = compose_hydra([f"experiment={experiment}"]).hydra.sweeper.params
    axes = [
        [f"{key}={value}" for value in str(values).split(",")] for key, values in params.items()
    ]
    return [[f"experiment={experiment}", *job] for job in itertools.product(*axes)]


def resolved(overrides: list[str], tmp_path: Path):
    cfg = compose_train_config(overrides, tmp_path)
    return OmegaConf.to_container(cfg, resolve=True), cfg


def shared_values(container: dict) -> dict:
    cfg = OmegaConf.create(container)
    return {key: OmegaConf.select(cfg, key) for key in SHARED_KEYS}


@pytest.mark.parametrize(
    "experiment, sweep",
    [
        (
            "ablation_optim",
            {
                "optim": "sgd,sgd_momentum,rmsprop,adam",
                "study.lr_point": "lowest,low,mid,high,highest",
            },
        ),
        (
            "ablation_norm",
            {"model.norm": "group,batch,instance,layer,none", "data.batch_size": "1,8"},
        ),
        (
            "ablation_optim_large",
            {
                "optim": "sgd,sgd_momentum,rmsprop,adam",
                "study.lr_point": "lowest,low,mid,high,highest",
            },
        ),
        (
            "ablation_norm_large",
            {"model.norm": "group,batch,instance,layer,none", "data.batch_size": "1,8"},
        ),
    ],
)
def test_experiment_composes_with_its_sweep(experiment, sweep):
    cfg = compose_hydra([f"experiment={experiment}"])
    assert OmegaConf.to_container(cfg.hydra.sweeper.params) == sweep
    assert experiment in cfg.hydra.sweep.dir  # each study gets its own multirun folder
    large = experiment.endswith("_large")
    assert cfg.hydra.runtime.choices.trainer == ("gpu" if large else "cpu")
    assert (cfg.model.chans, cfg.model.num_pool_layers) == ((32, 4) if large else (16, 3))
    assert cfg.module.train_crop_size == (None if large else 128)


def test_optim_sweep_builds_each_optimizer_at_its_grid_lr(tmp_path):
    jobs = sweep_jobs("ablation_optim")
    assert len(jobs) == 20
    net = torch.nn.Linear(2, 1)
    grid = OmegaConf.to_container(compose_hydra(["experiment=ablation_optim"]).study.lr_grid)
    shared, lrs = [], {}
    for job in jobs:
        container, cfg = resolved(job, tmp_path)
        name = HydraConfig.get().runtime.choices.optim
        point = container["study"]["lr_point"]
        optimizer = instantiate(cfg.optim)(net.parameters())
        cls, momentum = OPTIMIZERS[name]
        assert type(optimizer) is cls
        assert optimizer.defaults["lr"] == grid[name][point] == container["optim"]["lr"]
        if momentum is not None:
            assert optimizer.defaults["momentum"] == momentum
        lrs.setdefault(name, []).append(optimizer.defaults["lr"])
        assert container["model"]["norm"] == "group" and container["data"]["batch_size"] == 4
        shared.append(shared_values(container))
    assert all(s == shared[0] for s in shared)
    for name, values in lrs.items():  # five increasing learning rates, half a decade apart
        assert values == sorted(values) and len(values) == 5, name
        ratios = [b / a for a, b in itertools.pairwise(values)]
        assert all(2.99 < r < 3.34 for r in ratios), (name, ratios)


def test_norm_sweep_builds_each_norm_with_equal_samples(tmp_path):
    jobs = sweep_jobs("ablation_norm")
    assert len(jobs) == 10
    seen, shared = set(), []
    for job in jobs:
        container, cfg = resolved(job, tmp_path)
        net = instantiate(cfg.model)
        norm, batch_size = container["model"]["norm"], container["data"]["batch_size"]
        seen.add((norm, batch_size))
        norm_layers = [
            m
            for m in net.modules()
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d))
        ]
        assert bool(norm_layers) == (norm != "none"), norm
        if norm == "batch":
            assert all(isinstance(m, torch.nn.BatchNorm2d) for m in norm_layers)
        # Equal budget in samples: a fixed number of epochs over the same slices, no step cap.
        assert container["trainer"]["max_steps"] == -1
        assert container["optim"]["_target_"] == "torch.optim.Adam"
        shared.append(shared_values(container))
    assert seen == {(n, b) for n in NORMS for b in (1, 8)}
    assert all(s == shared[0] for s in shared)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from mri_recon.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("tiny_data")
    generate_dataset(root, preset="tiny", challenge="singlecoil", seed=0, progress=False)
    return root


TINY = [
    "debug=fast",
    "data.num_workers=0",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "trainer.limit_val_batches=2",
    "trainer.val_check_interval=1.0",
    "validate_ckpt=last",
]


def run_multirun(overrides: list[str], sweep_dir: Path) -> None:
    """``mri-recon-train -m ...`` through the console script, one thread per op."""
    cmd = [
        str(Path(sys.executable).parent / "mri-recon-train"),
        "-m",
        *overrides,
        *TINY,
        f"hydra.sweep.dir={sweep_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        cmd, cwd=sweep_dir.parent, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_tiny_optim_sweep_runs_and_compares(tiny_root, tmp_path, capsys, script_module):
    """Two jobs of ``mri-recon-train -m experiment=ablation_optim`` (the command line narrows
    the sweep), then compare_runs.py on the multirun directory."""
    sweep = tmp_path / "optim"
    run_multirun(
        [
            "experiment=ablation_optim",
            f"data.root={tiny_root}",
            "optim=sgd,adam",
            "study.lr_point=high",
        ],
        sweep,
    )
    runs, skipped = load_runs([sweep], partial(run_config_values, keys=["optim", "optim.lr"]))
    assert not skipped and [r.label for r in runs] == [
        "optim=sgd optim.lr=0.3",
        "optim=adam optim.lr=0.003",
    ]
    for run in runs:  # the job's saved config is what compose_train_config builds
        saved = OmegaConf.load(run.run_dir / ".hydra" / "config.yaml")
        overrides = list(OmegaConf.load(run.run_dir / ".hydra" / "overrides.yaml"))
        composed = compose_train_config(overrides, run.run_dir)
        assert OmegaConf.to_container(composed) == OmegaConf.to_container(saved)
    out = tmp_path / "compare"
    assert (
        script_module("compare_runs").main(
            [str(sweep), "--out", str(out), "--label-keys", "optim", "optim.lr"]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| optim=sgd optim.lr=0.3 |" in table and "| optim=adam optim.lr=0.003 |" in table
    for name in ("convergence_val_ssim.png", "convergence_train_loss.png"):
        assert (out / name).stat().st_size > 10_000
    rows = (out / "final_metrics.csv").read_text().splitlines()
    assert len(rows) == 3
    for run in runs:
        metrics = json.loads((run.run_dir / "metrics.json").read_text())["metrics"]
        assert run.post_fit["val/ssim"] == pytest.approx(metrics["val/ssim"], rel=1e-6)
        assert run.num_steps() == int(metrics["global_step"])


def test_tiny_norm_sweep_runs_and_compares(tiny_root, tmp_path):
    """Two jobs of ``mri-recon-train -m experiment=ablation_norm``: batch norm at batch sizes
    1 and 2 on tiny data, compared against training samples seen."""
    sweep = tmp_path / "norm"
    run_multirun(
        [
            "experiment=ablation_norm",
            f"data.root={tiny_root}",
            "model.norm=batch",
            "data.batch_size=1,2",
            "data.sample_rate=0.5",
        ],
        sweep,
    )
    from mri_recon.cli.run_configs import compare_runs

    result = compare_runs(
        [sweep],
        tmp_path / "compare",
        label_keys=["model.norm", "data.batch_size"],
        samples_key="data.batch_size",
    )
    assert [r["label"] for r in result.rows] == [
        "model.norm=batch data.batch_size=1",
        "model.norm=batch data.batch_size=2",
    ]
    assert {"convergence_val_ssim_samples", "convergence_train_loss_samples"} <= set(result.files)
    for run in result.runs:
        values = run_config_values(run.run_dir, ["data.batch_size", "model.norm", "optim"])
        assert values["model.norm"] == "batch" and values["optim"] == "adam"
        assert all(math.isfinite(v) for v in run.curves["val/ssim"].value)
    # the same epochs over the same slices, at least as many steps at batch size 1 (slices
    # of different widths never share a batch, so not always twice as many)
    bs1, bs2 = result.runs
    assert set(bs1.curves["val/ssim"].epoch) == set(bs2.curves["val/ssim"].epoch) == {0.0, 1.0}
    assert bs1.num_steps() >= bs2.num_steps() > 0


def test_tv_reconstructor_follows_configs_tv():
    from mri_recon.cli.notebook import tv_reconstructor

    configured = OmegaConf.load(REPO / "configs" / "tv" / "default.yaml")
    tv = tv_reconstructor()
    assert (tv.lam, tv.max_iters, tv.tol) == (configured.lam, configured.max_iters, configured.tol)
    assert tv_reconstructor(["tv.lam=0.003", "tv.max_iters=7"]).lam == 0.003
