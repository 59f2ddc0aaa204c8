"""``mri-recon-train``: train a network on fastMRI-layout data (Hydra, ``configs/train.yaml``).

    mri-recon-train experiment=default_cpu
    mri-recon-train model.norm=batch optim=rmsprop mask=random_8x trainer.max_epochs=5
    mri-recon-train -m optim=adam,rmsprop,sgd            # one run directory per optimizer
    mri-recon-train ckpt_path=RUN/checkpoints/last.ckpt   # resume RUN, in RUN

:func:`train` is a plain function of the composed config: it checks the config, builds the
data module, network, ReconModule, loggers, callbacks and trainer from their groups, fits,
validates the best (or last) checkpoint and writes ``metrics.json``, ``val_volumes.csv`` and
``provenance.json`` into the run directory (``paths.output_dir``). A resume runs with the
run's own overrides (``<run>/.hydra/overrides.yaml``, then the command line's) in ``<run>``,
so the result is the uninterrupted run's; a checkpoint the configured module cannot continue
is a one-line error before anything is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from mri_recon import checks
from mri_recon.cli.errors import CONFIG_EXIT, ConfigError, fail, parse_command_line, run_hydra_main
from mri_recon.cli.provenance import resolved_config, run_record
from mri_recon.cli.validate import build_group, check_train_config, checked
from mri_recon.lit.checkpoint import check_resume

if TYPE_CHECKING:
    pass


def build_list(cfg: DictConfig, group: str) -> list[Any]:
    """Every ``_target_`` node of a group that lists several (loggers, callbacks), built."""
    node = cfg.get(group) or {}
    return [build_group(cfg, f"{group}.{k}") for k, v in node.items() if "_target_" in (v or {})]


def self_supervised(cfg: DictConfig) -> bool:
    """Whether the ``training`` group trains without targets (``training=ssdu``)."""
    return bool(OmegaConf.select(cfg, "training._target_"))


def build_net(cfg: DictConfig) -> Any:
    """The network of ``model``, wrapped by the ``training`` group's trainer if it has one
    (``training=ssdu``: :class:`mri_recon.models.ssdu.SSDU`)."""
    net = build_group(cfg, "model")
    if self_supervised(cfg):
        net = build_group(cfg, "training", groups={"net": "model"}, net=net)
    return net


def check_loss(cfg: DictConfig) -> None:
    """The loss reads what the training gives it: k-space terms under SSDU, images against
    targets otherwise."""
    kspace_loss = bool(getattr(build_group(cfg, "loss"), "reads_kspace", False))
    if kspace_loss != self_supervised(cfg):
        name = OmegaConf.select(cfg, "loss._target_")
        raise ConfigError(
            "loss",
            f"{name} does not fit training={'ssdu' if self_supervised(cfg) else 'supervised'}"
            " (training=ssdu needs loss=ssdu, a loss on the held-out k-space; "
            "supervised training a loss against targets)",
        )


def build_module(cfg: DictConfig) -> Any:
    """The ReconModule with its network, optimizer, scheduler and loss built from their groups."""
    check_loss(cfg)
    return build_group(
        cfg,
        "module",
        groups={"net": "model", "optimizer": "optim", "scheduler": "scheduler", "loss": "loss"},
        net=build_net(cfg),
        optimizer=build_group(cfg, "optim"),
        scheduler=build_group(cfg, "scheduler") if cfg.get("scheduler") else None,
        loss=build_group(cfg, "loss"),
        net_spec=OmegaConf.to_container(cfg.model, resolve=True),
        _recursive_=False,
    )  # net_spec has a _target_ of its own: keep it a spec


def checkpoint_dir(cfg: DictConfig) -> str | None:
    """The folder the run's checkpoints go to (the ``dirpath`` of a ``callbacks`` entry)."""
    nodes = (cfg.get("callbacks") or {}).values()
    return next(
        (str(n.dirpath) for n in nodes if isinstance(n, DictConfig) and n.get("dirpath")), None
    )


def check_before_hydra(cfg: DictConfig) -> None:
    """What ``mri-recon-train`` checks before Hydra writes into the run directory: the config
    and, for a resume, the checkpoint and the data (the prescan's clean verdicts are cached,
    so the run's own setup reads them back): a failed resume never touches the run's
    ``.hydra/``, whose overrides are the next resume's config."""
    check_train_config(cfg)
    check_loss(cfg)
    if self_supervised(cfg):  # training.rho, training.num_splits, a model without DC
        build_net(cfg)
    if cfg.get("ckpt_path") is not None:
        check_validate_ckpt(cfg)
        check_resume(cfg.ckpt_path, build_module(cfg), checkpoint_dir(cfg))
        build_data(cfg, build_group(cfg, "mask")).setup("fit")


def build_data(cfg: DictConfig, mask_func: Any) -> Any:
    """The data module; under ``training=ssdu`` training files need no target."""
    return build_group(cfg, "data", mask_func=mask_func, require_targets=not self_supervised(cfg))


def check_validate_ckpt(cfg: DictConfig) -> None:
    from mri_recon.lit.training import VALIDATE_CKPTS  # imports Lightning

    checked(checks.one_of, "validate_ckpt", cfg.get("validate_ckpt"), VALIDATE_CKPTS)


def resume_argv(argv: list[str]) -> list[str]:
    """The command line of a resume (``ckpt_path=<run>/checkpoints/<name>.ckpt``): the
    overrides saved in ``<run>/.hydra/overrides.yaml`` whose key ``argv`` does not set, then
    ``argv``'s, then ``hydra.run.dir=<run>`` unless set. Other command lines are returned as
    they are (a multirun, no or no such checkpoint: the config checks report those)."""
    args = parse_command_line(argv)
    try:
        given = {
            o.key_or_group: o for o in OverridesParser.create().parse_overrides(args.overrides)
        }
    except HydraException:
        return argv  # composing reports it
    ckpt = given["ckpt_path"].value() if "ckpt_path" in given else None
    if args.multirun or not isinstance(ckpt, str) or not os.path.isfile(ckpt):
        return argv
    run_dir = Path(os.path.abspath(ckpt)).parent.parent
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        fail(f"ckpt_path: {ckpt}: not in a run directory (no {saved}): a resume continues the "
             "run that wrote the checkpoint, in its directory", CONFIG_EXIT)  # fmt: skip
    try:
        previous = OverridesParser.create().parse_overrides([str(o) for o in OmegaConf.load(saved)])
    except Exception as err:  # not YAML, not a list, or not overrides Hydra can parse
        fail(f"{saved}: not a list of overrides ({type(err).__name__})", CONFIG_EXIT)
    kept = [o.input_line for o in previous if o.key_or_group not in given]
    run = [] if "hydra.run.dir" in given else [f'hydra.run.dir="{run_dir}"']
    flags = [arg for arg in argv if arg not in args.overrides]  # with their values, in order
    return [*flags, *kept, *args.overrides, *run]


def train(cfg: DictConfig) -> dict[str, float]:
    """Train and validate as the config says (``paths.output_dir`` is the run directory).

    Returns:
        The final metrics: ``val/ssim``, ``val/psnr``, ``val/nmse`` (per-volume means of the
        final validation), ``train/*`` of the last epoch, ``epoch``, ``global_step``.

    Raises:
        ConfigError: a bad config value (one line naming the field), before any training.
        DataError: a bad data file (one line naming the file).
    """
    check_train_config(cfg)
    mask_func = build_group(cfg, "mask")
    if cfg.get("coils"):  # checked with the rest of the config; no network here takes maps
        build_group(cfg, "coils")
    # Lightning is imported once the config checks passed: a bad command line fails fast
    from mri_recon.lit.callbacks import SliceCounter
    from mri_recon.lit.model_card import write_run_model_card
    from mri_recon.lit.trackers import log_run_artifacts
    from mri_recon.lit.training import (
        callbacks_for_loggers,
        fit_and_validate,
        seed_everything,
        torch_flags_restored,
    )

    check_validate_ckpt(cfg)
    datamodule = build_data(cfg, mask_func)
    seed_everything(cfg.seed)  # before the network draws its initial weights
    module = build_module(cfg)
    if datamodule.transform == "worker" and module.reconstructor.needs_kspace:
        raise ConfigError(
            "data.transform",
            f"'worker' gives {type(module.reconstructor).__name__} zero-filled images; it "
            "needs the k-space: use data.transform=device",
        )
    if cfg.ckpt_path is not None:
        check_resume(cfg.ckpt_path, module, checkpoint_dir(cfg))
    datamodule.setup("fit")  # bad data files fail here, before anything is trained
    loggers = build_list(cfg, "logger")
    callbacks = callbacks_for_loggers(build_list(cfg, "callbacks"), loggers)
    callbacks.append(counter := SliceCounter())
    with torch_flags_restored():
        trainer = build_group(cfg, "trainer", logger=loggers or False, callbacks=callbacks)
        record = run_record(cfg).start_train(mask_func)  # provenance.json: a running segment
        result = fit_and_validate(
            trainer, module, datamodule, ckpt_path=cfg.ckpt_path, validate_ckpt=cfg.validate_ckpt
        )
    if result.is_global_zero:
        run_dir = Path(cfg.paths.output_dir)
        result.write(run_dir)
        record.finish_train(result, trainer, counter.slices * trainer.world_size)
        cards = write_run_model_card(run_dir, result)  # beside best.ckpt
        tables = [run_dir / "val_volumes.csv", run_dir / "metrics.json", *cards]
        log_run_artifacts(loggers, resolved_config(cfg), tables)  # MLflow, W&B
        validated = result.checkpoint or "final weights"
        print(f"run directory: {run_dir} (validated {validated})", flush=True)
    return result.metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-train [overrides]``; ``-m`` for multirun."""
    argv = resume_argv(list(sys.argv[1:] if argv is None else argv))
    run_hydra_main(train, "train", argv, precheck=check_before_hydra)


if __name__ == "__main__":
    main()
