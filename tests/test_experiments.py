"""The study configs: experiment=ablation_optim / ablation_norm / ablation_groups (and the _large variants)
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
from mri_recon.cli.notebook import compose_job
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
    cfg = compose_job("train", overrides, tmp_path)
    return OmegaConf.to_container(cfg, resolve=True), cfg


def shared_values(container: dict) -> dict:
    cfg = OmegaConf.create(container)
    return {key: OmegaConf.select(cfg, key) for key in SHARED_KEYS}


@pytest.mark.parametrize(
    "experiment, sweep",
    [
        (
            "ablation_optim",
            {"optim": "sgd,sgd_momentum,rmsprop,adam", "study.lr_point": "low,mid,high"},
        ),
        (
            "ablation_norm",
            {"model.norm": "group,batch,instance,layer,none", "data.batch_size": "1,8"},
        ),
        (
            "ablation_groups",
            {
                "model.norm": "group",
                "model.norm_groups": "1,4,8,16",
                "data.batch_size": "1,8",
                "study.lr_point": "low,mid,high",
            },
        ),
        (
            "ablation_optim_large",
            {"optim": "sgd,sgd_momentum,rmsprop,adam", "study.lr_point": "low,mid,high"},
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
    assert len(jobs) == 12
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
    for name, values in lrs.items():  # three increasing learning rates, half a decade apart
        assert values == sorted(values) and len(values) == 3, name
        # centred on the first study's best; lowest/highest extend the bracket outward
        assert values[1] == {"sgd": 0.3, "sgd_momentum": 0.1}.get(name, 1e-3), name
        points = [grid[name][p] for p in ("lowest", "low", "mid", "high", "highest")]
        ratios = [b / a for a, b in itertools.pairwise(points)]
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


def test_groups_sweep_builds_each_group_count_at_its_grid_lr(tmp_path):
    """24 jobs: groups {1, 4, 8, 16} x batch {1, 8} x 3 learning rates, every GroupNorm of
    the job's network has the job's group count, and only those three values differ."""
    jobs = sweep_jobs("ablation_groups")
    assert len(jobs) == 24
    grid = OmegaConf.to_container(compose_hydra(["experiment=ablation_groups"]).study.lr_grid)
    seen, shared = set(), []
    for job in jobs:
        container, cfg = resolved(job, tmp_path)
        groups, batch = container["model"]["norm_groups"], container["data"]["batch_size"]
        lr = container["optim"]["lr"]
        seen.add((groups, batch, lr))
        assert lr == grid[container["study"]["lr_point"]]
        net = instantiate(cfg.model)
        norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
        assert len(norms) == 17 and {m.num_groups for m in norms} == {groups}
        assert container["model"]["chans"] == 16 and container["model"]["norm"] == "group"
        assert container["optim"]["_target_"] == "torch.optim.Adam"
        shared.append(shared_values(container))
    assert seen == {(g, b, lr) for g in (1, 4, 8, 16) for b in (1, 8) for lr in (3e-4, 1e-3, 3e-3)}
    assert all(s == shared[0] for s in shared)
    # the same data, masks and budget as the normalization study it extends
    norm = shared_values(resolved(sweep_jobs("ablation_norm")[0], tmp_path)[0])
    assert shared[0] == norm


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
            "study.lr_point=mid",
        ],
        sweep,
    )
    runs, skipped = load_runs([sweep], partial(run_config_values, keys=["optim", "optim.lr"]))
    assert not skipped and [r.label for r in runs] == [
        "optim=sgd optim.lr=0.3",
        "optim=adam optim.lr=0.001",
    ]
    for run in runs:  # the job's saved config is what compose_train_config builds
        saved = OmegaConf.load(run.run_dir / ".hydra" / "config.yaml")
        overrides = list(OmegaConf.load(run.run_dir / ".hydra" / "overrides.yaml"))
        composed = compose_job("train", overrides, run.run_dir)
        assert OmegaConf.to_container(composed) == OmegaConf.to_container(saved)
    out = tmp_path / "compare"
    assert (
        script_module("compare_runs").main(
            [str(sweep), "--out", str(out), "--label-keys", "optim", "optim.lr"]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| optim=sgd optim.lr=0.3 |" in table and "| optim=adam optim.lr=0.001 |" in table
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
    lam = configured.tv_lam.singlecoil  # eval.yaml's data.challenge
    assert (tv.lam, tv.max_iters, tv.tol) == (lam, configured.tv.max_iters, configured.tv.tol)
    assert tv_reconstructor(["tv.lam=0.003", "tv.max_iters=7"]).lam == 0.003
    # the default weight follows the data's challenge (issue 20)
    lam = configured.tv_lam.multicoil
    assert tv_reconstructor(["data.challenge=multicoil"]).lam == lam
    moved = ["tv_lam.multicoil=0.0123"]
    assert tv_reconstructor([*moved, "data.challenge=multicoil"]).lam == 0.0123
    assert tv_reconstructor(moved).lam == configured.tv_lam.singlecoil
    assert tv_reconstructor([*moved, "data.challenge=multicoil", "tv.lam=0.5"]).lam == 0.5


# ------------------------------------------------------------------------ GPU recipes


@pytest.mark.parametrize("experiment", ["fastmri_unet_gpu", "fastmri_unet_gpu_fast"])
def test_gpu_recipe_runs_on_cpu_with_debug_fast(experiment, tiny_root, tmp_path):
    """The GPU recipes as they are (model, optimizer, batch, precision, channels_last) run a
    debug=fast training on CPU; compile is switched off (minutes of compiling on CPU; the
    compiled network is tested in tests/lit/test_module.py)."""
    from mri_recon.cli.train import train

    cfg = compose_hydra(
        [
            f"experiment={experiment}",
            f"data.root={tiny_root}",
            f"paths.output_dir={tmp_path}",
            "debug=fast",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar",
            "validate_ckpt=last",
            "trainer.accelerator=cpu",
            "data.pin_memory=false",
            "module.compile=null",
        ]
    )
    HydraConfig.instance().set_config(cfg)
    fast = experiment.endswith("_fast")
    assert cfg.trainer.precision == ("bf16-mixed" if fast else "32-true")
    assert cfg.module.channels_last is fast and cfg.model.chans == 32
    metrics = train(cfg)
    assert metrics["global_step"] >= 2
    assert all(math.isfinite(metrics[k]) for k in ("train/loss", "val/loss", "val/ssim"))
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_fast_gpu_recipe_states_its_settings(tmp_path):
    cfg = compose_hydra(["experiment=fastmri_unet_gpu_fast", f"paths.output_dir={tmp_path}"])
    base = compose_hydra(["experiment=fastmri_unet_gpu", f"paths.output_dir={tmp_path}"])
    assert cfg.hydra.runtime.choices.optim == "adam" and cfg.model.norm == "group"
    assert cfg.module.compile == "default" and cfg.module.channels_last is True
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.accelerator == "gpu"
    # sqrt scaling of the batch-1 recipe's learning rate
    assert base.data.batch_size == 1 and cfg.data.batch_size == 64
    assert cfg.optim.lr == pytest.approx(base.optim.lr * math.sqrt(cfg.data.batch_size))


# ------------------------------------------------------------------- SLURM (multi-node)

SLURM = [
    "experiment=fastmri_unet_gpu_fast",  # a recipe, moved onto SLURM by trainer=slurm
    "trainer=slurm",
    "hydra.launcher.nodes=2",
    "hydra.launcher.gpus_per_node=4",
    "hydra.launcher.partition=gpu",
    "hydra.launcher.timeout_min=120",
]


def test_slurm_launcher_composes_and_writes_the_sbatch_script(tmp_path, monkeypatch):
    """trainer=slurm selects Hydra's submitit SLURM launcher (hydra/launcher=slurm); the
    trainer follows its nodes and GPUs per node, and the launcher turns them into the sbatch script (captured
    before submission: a fake ``srun`` on PATH stands in for the cluster)."""
    import submitit

    cfg = compose_hydra([*SLURM, f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.job.name=t"])
    HydraConfig.instance().set_config(cfg)
    launcher = cfg.hydra.launcher
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "slurm"
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 4, 4)
    assert (launcher.partition, launcher.timeout_min) == ("gpu", 120)
    assert (cfg.trainer.num_nodes, cfg.trainer.devices) == (2, 4)
    assert cfg.trainer.strategy._target_.endswith("DDPStrategy")
    assert cfg.trainer.precision == "bf16-mixed"  # the recipe's own settings stay

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    captured = {}

    class Submitted(Exception):
        pass

    class Recorder(submitit.AutoExecutor):
        def map_array(self, fn, *args):
            captured["executor"] = self
            raise Submitted

    monkeypatch.setattr(submitit, "AutoExecutor", Recorder)
    plugin = instantiate(launcher)
    plugin.setup(hydra_context=None, task_function=print, config=cfg)
    with pytest.raises(Submitted):
        plugin.launch([["seed=1"]], initial_job_idx=0)
    script = captured["executor"]._executor._make_submission_file_text("train", "0")
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu"):
        assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --time=120\n" in script


@pytest.mark.parametrize(("procid", "node", "local"), [(0, 0, 0), (6, 1, 2)])
def test_lightning_reads_ranks_from_slurm(procid, node, local, tmp_path, monkeypatch):
    """Under srun (SLURM's variables set) the trainer built from trainer=slurm takes
    its global rank, world size and node from SLURM; nothing is fitted."""
    from pytorch_lightning.plugins.environments import SLURMEnvironment

    from mri_recon.cli.train import build_group
    from mri_recon.lit.training import torch_flags_restored

    slurm = {
        "SLURM_NTASKS": "8",
        "SLURM_NTASKS_PER_NODE": "4",
        "SLURM_NNODES": "2",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_PROCID": str(procid),
        "SLURM_LOCALID": str(local),
        "SLURM_NODEID": str(node),
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NODELIST": "gpu[01-02]",
    }
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    cfg = compose_hydra([*SLURM, f"paths.output_dir={tmp_path}", "trainer.accelerator=cpu"])
    HydraConfig.instance().set_config(cfg)
    with torch_flags_restored():
        trainer = build_group(cfg, "trainer", logger=False, callbacks=[])
    assert isinstance(trainer.strategy.cluster_environment, SLURMEnvironment)
    assert (trainer.num_nodes, trainer.num_devices, trainer.world_size) == (2, 4, 8)
    assert (trainer.global_rank, trainer.node_rank, trainer.local_rank) == (procid, node, local)
    assert trainer.strategy.cluster_environment.main_address == "gpu01"
