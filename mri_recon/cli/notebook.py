"""Runs from Python (notebooks, tests) that look exactly like the CLIs' runs: configs composed
from ``configs/`` with the command line's overrides (:func:`compose_job`), Hydra's ``.hydra/``
in the run directory, so ``scripts/compare_runs.py`` reads them like any other.

    metrics = train_run(["experiment=default_cpu", "trainer.max_epochs=1"], "outputs/nb/run0")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mri_recon.baselines.tv import TVReconstructor
from mri_recon.cli.config import config_dir
from mri_recon.cli.errors import job_config
from mri_recon.cli.validate import build_group


def compose_job(
    config_name: str,
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike = ".",
    job_num: int = 0,
) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` for one job whose run directory is
    ``output_dir``, as Hydra does before calling the task: ``${hydra:...}`` interpolations
    (``paths.output_dir``, the mask's name) resolve, and the ``hydra`` node is gone.

    Args:
        overrides: command-line style overrides, e.g. ``["experiment=ablation_norm"]``.
        job_num: ``hydra.job.num`` (the job's index within a multirun).
    """
    with initialize_config_dir(config_dir(), version_base="1.3", job_name=config_name):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    return job_config(cfg, Path(output_dir).resolve(), job_num)


def save_hydra_files(cfg: DictConfig, overrides: Sequence[str]) -> Path:
    """Write ``.hydra/{config,hydra,overrides}.yaml`` of a :func:`compose_job` config (its
    HydraConfig still current) composed with ``overrides``; returns the ``.hydra`` dir."""
    hydra_cfg = HydraConfig.get()
    hydra_dir = Path(hydra_cfg.runtime.output_dir) / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), hydra_dir / "hydra.yaml")
    OmegaConf.save(OmegaConf.create(list(overrides)), hydra_dir / "overrides.yaml")
    return hydra_dir


def train_run(
    overrides: Sequence[str], output_dir: str | os.PathLike, job_num: int = 0
) -> dict[str, float]:
    """Compose, record and run one training job, as ``mri-recon-train`` would.

    Args:
        overrides: command-line style overrides.
        output_dir: the run directory (created).
        job_num: the job's index (for a multirun-like layout ``<dir>/<job_num>``).

    Returns:
        :func:`mri_recon.cli.train.train`'s final metrics (``val/ssim``, ``val/psnr``,
        ``val/nmse``, ``train/*``, ``epoch``, ``global_step``).
    """
    from mri_recon.cli.train import train  # Lightning is heavy: import only to train

    cfg = compose_job("train", overrides, output_dir, job_num)
    save_hydra_files(cfg, overrides)
    return train(cfg)


def train_sweep(
    jobs: Sequence[Sequence[str]], sweep_dir: str | os.PathLike
) -> list[dict[str, float]]:
    """Run jobs (the overrides of each) one after another into ``<sweep_dir>/<index>``, a
    multirun directory layout; returns the final metrics of each job, in order."""
    sweep_dir = Path(sweep_dir)
    return [train_run(job, sweep_dir / str(i), job_num=i) for i, job in enumerate(jobs)]


def tv_reconstructor(overrides: Sequence[str] = ()) -> TVReconstructor:
    """The :class:`~mri_recon.baselines.tv.TVReconstructor` ``mri-recon-eval`` builds from
    ``configs/eval.yaml``'s ``tv`` group, with ``overrides`` (e.g. ``["tv.lam=0.003"]``)."""
    with initialize_config_dir(config_dir(), version_base="1.3", job_name="eval"):
        return build_group(compose("eval", overrides=list(overrides)), "tv")
