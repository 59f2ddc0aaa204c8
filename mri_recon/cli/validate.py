"""Checks of the training config that run before anything is built or trained.

Each failure is a one-line :class:`~mri_recon.cli.errors.ConfigError` naming the field
(``error: data.batch_size: must be an int >= 1, got 0``). Constraints that a constructor
already enforces with a field-named message (``ColumnMaskFunc`` for ``mask.*``, ``Unet``
for ``model.*``) are surfaced by building those objects first (:func:`build_group`);
the checks here cover what would otherwise fail late (inside ``fit``) or never.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.errors import HydraException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from mri_recon.cli.errors import ConfigError
from mri_recon.data.fastmri import CHALLENGES
from mri_recon.models.norms import NORM_TYPES

VALIDATE_CKPTS = ("best", "last")
_MISSING = object()


def _value(cfg: DictConfig, key: str) -> Any:
    """``cfg.<key>`` resolved, or ``_MISSING`` when the key is absent."""
    try:
        value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise ConfigError(key, " ".join(str(err).split("\n")[:1])) from None
    return value


def check_int(cfg: DictConfig, key: str, minimum: int, optional: bool = False) -> None:
    """``cfg.<key>`` is an int >= ``minimum`` (or null when ``optional``); absent keys pass."""
    value = _value(cfg, key)
    if value is _MISSING or (optional and value is None):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        nullable = " or null" if optional else ""
        raise ConfigError(key, f"must be an int >= {minimum}{nullable}, got {value!r}")


def check_number(
    cfg: DictConfig,
    key: str,
    low: float,
    high: float | None = None,
    low_open: bool = False,
    optional: bool = False,
) -> None:
    """``cfg.<key>`` is a number in [low, high] ((low, high] with ``low_open``)."""
    value = _value(cfg, key)
    if value is _MISSING or (optional and value is None):
        return
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    too_low = is_number and (value <= low if low_open else value < low)
    too_high = is_number and high is not None and value > high
    if not is_number or too_low or too_high or value != value:
        span = (
            f"{'(' if low_open else '['}{low:g}, {high:g}]"
            if high is not None
            else (f"> {low:g}" if low_open else f">= {low:g}")
        )
        where = f"in {span}" if high is not None else span
        raise ConfigError(key, f"must be a number {where}, got {value!r}")


def check_choice(cfg: DictConfig, key: str, choices: tuple[str, ...]) -> None:
    """``cfg.<key>`` is one of ``choices`` (absent keys pass)."""
    value = _value(cfg, key)
    if value is not _MISSING and value not in choices:
        raise ConfigError(key, f"{value!r} is not one of {list(choices)}")


def check_target(cfg: DictConfig, group: str, base: type, what: str) -> None:
    """``cfg.<group>._target_`` names a subclass of ``base``."""
    target = _value(cfg, f"{group}._target_")
    if target is _MISSING or target is None:
        raise ConfigError(f"{group}._target_", f"missing: {group} must name {what}")
    try:
        cls = get_class(str(target))
    except (HydraException, ImportError, ValueError) as err:
        raise ConfigError(f"{group}._target_", f"cannot import {target!r} ({err})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{group}._target_", f"{target!r} is not {what}")


def _check_data(cfg: DictConfig) -> None:
    check_choice(cfg, "data.challenge", CHALLENGES)
    check_int(cfg, "data.batch_size", 1)
    check_int(cfg, "data.val_batch_size", 1, optional=True)
    check_int(cfg, "data.num_workers", 0)
    check_number(cfg, "data.sample_rate", 0.0, 1.0, low_open=True)
    check_number(cfg, "data.val_sample_rate", 0.0, 1.0, low_open=True)
    check_number(cfg, "data.volume_sample_rate", 0.0, 1.0, low_open=True, optional=True)
    root = _value(cfg, "data.root")
    if root is not _MISSING and not Path(str(root)).is_dir():
        raise ConfigError(
            "data.root",
            f"{root}: no such directory (build the synthetic data "
            "with `mri-recon-data synth --out DIR` or set MRI_RECON_DATA)",
        )


def _check_optim(cfg: DictConfig) -> None:
    check_target(cfg, "optim", Optimizer, "a torch.optim optimizer")
    if _value(cfg, "optim._partial_") is not True:
        raise ConfigError("optim._partial_", "must be true (the module passes the parameters)")
    check_number(cfg, "optim.lr", 0.0, low_open=True)
    for key in ("weight_decay", "momentum"):
        check_number(cfg, f"optim.{key}", 0.0)


def _check_scheduler(cfg: DictConfig) -> None:
    scheduler = _value(cfg, "scheduler")
    if scheduler is _MISSING or scheduler is None or len(scheduler) == 0:
        return
    check_target(cfg, "scheduler", LRScheduler, "a torch.optim.lr_scheduler scheduler")
    if _value(cfg, "scheduler._partial_") is not True:
        raise ConfigError("scheduler._partial_", "must be true (the module passes the optimizer)")
    check_int(cfg, "scheduler.step_size", 1)
    check_number(cfg, "scheduler.gamma", 0.0, low_open=True)
    check_int(cfg, "scheduler.T_max", 1)


def _check_trainer(cfg: DictConfig) -> None:
    max_epochs = _value(cfg, "trainer.max_epochs")
    if max_epochs not in (_MISSING, None, -1):
        check_int(cfg, "trainer.max_epochs", 1)
    if _value(cfg, "trainer.use_distributed_sampler") not in (False, _MISSING):
        raise ConfigError(
            "trainer.use_distributed_sampler",
            "must be false: the data module's "
            "batch sampler buckets by k-space shape and shards across ranks itself",
        )


def check_train_config(cfg: DictConfig) -> None:
    """Check the composed ``configs/train.yaml`` before building anything.

    Raises:
        ConfigError: one line ``<field>: <reason>``.
    """
    check_int(cfg, "seed", 0)
    check_choice(cfg, "validate_ckpt", VALIDATE_CKPTS)
    ckpt_path = _value(cfg, "ckpt_path")
    if ckpt_path not in (_MISSING, None) and not Path(str(ckpt_path)).is_file():
        raise ConfigError("ckpt_path", f"{ckpt_path}: no such checkpoint file")
    check_choice(cfg, "model.norm", NORM_TYPES)
    check_int(cfg, "torch_threads", 1, optional=True)
    check_int(cfg, "module.train_crop_size", 1, optional=True)
    check_int(cfg, "module.num_log_images", 0)
    _check_data(cfg)
    _check_optim(cfg)
    _check_scheduler(cfg)
    _check_trainer(cfg)


def build_group(cfg: DictConfig, group: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(cfg.<group>, **kwargs)``; errors become one-line ConfigErrors.

    A constructor message that starts with ``<group>.<field>`` (``mask.accelerations:
    acceleration 0.5 must be >= 1``) keeps its field; others are prefixed with the group.
    """
    try:
        return instantiate(OmegaConf.select(cfg, group), **kwargs)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as err:
        reason = " ".join(str(err.__cause__ or err).split())
        head, sep, rest = reason.partition(":")
        if sep and head.startswith(f"{group}.") and " " not in head:
            raise ConfigError(head, rest) from None
        if reason.startswith(f"{group}.") or reason.startswith(f"{group}="):
            field = reason.split("=", 1)[0].split(" ", 1)[0]
            if reason.startswith(f"{field} "):  # "model.chans must be ..." -> "must be ..."
                reason = reason[len(field) + 1 :]
            raise ConfigError(field, reason) from None
        raise ConfigError(group, reason) from None
