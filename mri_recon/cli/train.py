"""``mri-recon-train``: train a network on fastMRI-layout data (Hydra, ``configs/train.yaml``).

    mri-recon-train experiment=default_cpu
    mri-recon-train model.norm=batch optim=rmsprop mask=random_8x trainer.max_epochs=5 \\
        data.root=/data/knee
    mri-recon-train -m optim=adam,rmsprop,sgd            # one run directory per optimizer
    mri-recon-train ckpt_path=RUN/checkpoints/last.ckpt   # resume
    mri-recon-train trainer=ddp trainer.devices=2 trainer.accelerator=cpu

:func:`train` is a plain function of the composed config: it checks the config (a bad value
is a one-line error naming the field, before anything is built), seeds, instantiates the
data module, network, ReconModule, loggers, callbacks and trainer from their groups, fits
(resuming from ``ckpt_path``), validates the best (or last) checkpoint, and writes
``metrics.json``, ``val_volumes.csv`` and ``provenance.json`` (code, data hashes, versions,
hardware, resources; :mod:`mri_recon.cli.provenance`) into the run directory (``paths.output_dir``),
next to ``checkpoints/``, ``csv/``, ``tensorboard/`` and Hydra's ``.hydra/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from mri_recon.cli.config import register_resolvers
from mri_recon.cli.errors import run_hydra_main
from mri_recon.cli.provenance import RunRecord
from mri_recon.cli.validate import build_group, check_train_config, set_torch_threads
from mri_recon.fileio import write_atomic, write_csv

if TYPE_CHECKING:
    from mri_recon.lit.training import RunResult

register_resolvers()

VOLUME_COLUMNS = ("fname", "num_slices", "nmse", "psnr", "ssim")


def build_list(cfg: DictConfig, group: str) -> list[Any]:
    """Instantiate every ``_target_`` node of a group that may list several (loggers, callbacks).

    Returns:
        The objects, in config order (empty for an empty group).
    """
    node = cfg.get(group)
    if not node:
        return []
    return [
        build_group(cfg, f"{group}.{key}")
        for key, value in node.items()
        if isinstance(value, DictConfig) and "_target_" in value
    ]


def build_module(cfg: DictConfig) -> Any:
    """The ReconModule with its network, optimizer, scheduler and loss built from their groups."""
    net = build_group(cfg, "model")
    scheduler = build_group(cfg, "scheduler") if cfg.get("scheduler") else None
    return build_group(
        cfg,
        "module",
        net=net,
        optimizer=build_group(cfg, "optim"),
        scheduler=scheduler,
        loss=build_group(cfg, "loss"),
        net_spec=OmegaConf.to_container(cfg.model, resolve=True),
        _recursive_=False,
    )  # net_spec has a _target_ of its own: keep it a spec


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and validate as the config says; see the module docstring.

    Args:
        cfg: the composed ``configs/train.yaml`` (``paths.output_dir`` must resolve: under
            Hydra it is the run directory; set it when composing in Python).

    Returns:
        The final metrics: ``val/ssim``, ``val/psnr``, ``val/nmse`` (per-volume means of the
        final validation), ``train/*`` of the last epoch, ``epoch``, ``global_step``.

    Raises:
        ConfigError: a bad config value (one line naming the field), before any training.
        DataError: a bad data file (one line naming the file).
    """
    check_train_config(cfg)
    mask_func = build_group(cfg, "mask")
    # Lightning is imported only once the config checks passed: a bad command line fails
    # in about a second, not after Lightning's import
    from mri_recon.lit.callbacks import SliceCounter
    from mri_recon.lit.training import (
        callbacks_for_loggers,
        fit_and_validate,
        seed_everything,
        torch_flags_restored,
    )

    set_torch_threads(cfg)
    datamodule = build_group(cfg, "data", mask_func=mask_func)
    seed_everything(cfg.seed)  # before the network draws its initial weights
    module = build_module(cfg)
    datamodule.setup("fit")  # bad data files fail here, before anything is trained
    loggers = build_list(cfg, "logger")
    callbacks = callbacks_for_loggers(build_list(cfg, "callbacks"), loggers)
    callbacks.append(counter := SliceCounter())
    with torch_flags_restored():
        trainer = build_group(cfg, "trainer", logger=loggers or False, callbacks=callbacks)
        record = RunRecord.start_train(cfg, mask_func)  # provenance.json: a running segment
        result = fit_and_validate(
            trainer, module, datamodule, ckpt_path=cfg.ckpt_path, validate_ckpt=cfg.validate_ckpt
        )
    if result.is_global_zero:
        run_dir = Path(cfg.paths.output_dir)
        write_run_outputs(run_dir, result)
        record.finish_train(result, trainer, counter.slices * trainer.world_size)
        print(
            f"run directory: {run_dir} (validated {result.checkpoint or 'final weights'})",
            flush=True,
        )
    return result.metrics


def write_run_outputs(run_dir: Path, result: RunResult) -> None:
    """Write ``metrics.json`` (final metrics and checkpoint paths) and ``val_volumes.csv``
    (per-volume metrics of the final validation) into ``run_dir``, atomically."""
    summary = {
        "metrics": result.metrics,
        "validated_checkpoint": result.checkpoint,
        "best_checkpoint": result.best_checkpoint,
        "last_checkpoint": result.last_checkpoint,
    }
    write_atomic(run_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    write_csv(run_dir / "val_volumes.csv", result.volumes, VOLUME_COLUMNS)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-train [overrides]``; ``-m`` for multirun."""
    run_hydra_main(train, "train", argv)


if __name__ == "__main__":
    main()
