"""The one builder of config groups, and the few checks no constructor can make.

Constructors check their own arguments and name the field in the message (``FastMRIDataModule``
for ``data.*``, ``ColumnMaskFunc`` for ``mask.*``, ``Unet`` for ``model.*``, ``ReconModule`` for
``module.*``, ``optim`` and ``scheduler``). :func:`build_group` turns whatever they raise into
one :class:`~mri_recon.cli.errors.ConfigError` line naming the config field
(``error: data.batch_size: must be an int >= 1, got 0``). :func:`check_train_config` covers
what no constructor sees, before anything is built: paths, the checkpoint to validate, and
values that torch and Lightning accept but that cannot train.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon.cli.errors import ConfigError, one_line

VALIDATE_CKPTS = ("best", "last")
# Lightning accepts more (16-true, bf16-true, 64-true): those cast the batch, so the targets
# and metrics would leave float32; ReconModule keeps the physics in float32 under these only
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
_MISSING = object()
# "<field>: reason", "<field>=value reason" or "<field> reason" at the start of a message
_LEADING_FIELD = re.compile(r"([A-Za-z_][\w.]*)(:\s*|=|\s+)(.*)")


def _value(cfg: DictConfig, key: str) -> Any:
    """``cfg.<key>`` resolved, or ``_MISSING`` when the key is absent."""
    try:
        return OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=True)
    except OmegaConfBaseException as err:
        raise ConfigError(key, str(err).split("\n")[0]) from None


def _source(cfg: DictConfig, key: str) -> str:
    """The key a value was set under: ``seed`` for ``data.seed: ${seed}``, else ``key``."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else None
    raw = OmegaConf.to_container(node)[leaf] if isinstance(node, DictConfig) else None
    found = re.fullmatch(r"\$\{([\w.]+)\}", raw) if isinstance(raw, str) else None
    return found.group(1) if found else key


def config_error(cfg: DictConfig, group: str, err: BaseException) -> ConfigError:
    """The one-line ConfigError for ``err``, raised while building ``cfg.<group>``.

    A message that starts with a config key (``mask.accelerations: ...``, ``model.norm='x' is
    ...``, ``data.seed must be ...``) names that key, or the key an interpolation took it from;
    otherwise the group is named, refined to the one field of the group the message mentions
    (``optim: Invalid weight_decay value: -1`` -> ``optim.weight_decay``).
    """
    reason = one_line(err.__cause__ or err)
    field = group
    lead = _LEADING_FIELD.fullmatch(reason)
    if lead and _value(cfg, lead.group(1)) is not _MISSING:
        field, reason = _source(cfg, lead.group(1)), lead.group(3)
    node = _value(cfg, field)
    if isinstance(node, DictConfig):
        words = set(re.findall(r"\w+", reason))
        named = [k for k in node if not k.startswith("_") and k in words]
        field = f"{field}.{named[0]}" if len(named) == 1 else field
    if isinstance(err.__cause__, ImportError):  # Hydra could not import the _target_
        field = f"{group}._target_"
    return ConfigError(field, reason)


def build_group(cfg: DictConfig, group: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(cfg.<group>, **kwargs)``; errors become one-line ConfigErrors.

    Raises:
        ConfigError: see :func:`config_error`.
    """
    try:
        return instantiate(OmegaConf.select(cfg, group), **kwargs)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as err:
        raise config_error(cfg, group, err) from None


def require_number(
    cfg: DictConfig, key: str, low: float, integer: bool = False, strict: bool = False
) -> Any:
    """``cfg.<key>``, a number >= ``low`` (> when ``strict``), an int if ``integer``; absent
    or null keys give None. For values that no constructor of ours receives."""
    value = _value(cfg, key)
    if value is _MISSING or value is None:
        return None
    kind = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not (value > low if strict else value >= low)
    ):
        what = "an integer" if integer else "a number"
        raise ConfigError(key, f"must be {what} {'>' if strict else '>='} {low}, got {value!r}")
    return value


def set_torch_threads(cfg: DictConfig) -> None:
    """Apply ``torch_threads`` (null: torch's default, the number of cores).

    Small convolutions gain nothing from a second OpenMP thread on 2 cores next to a data
    worker, and lose a lot when the cores are shared (measured: 1.6 min vs 5-18 min per study
    job). The environment variable cannot do this: torch is imported already.
    """
    threads = require_number(cfg, "torch_threads", 1, integer=True)
    if threads is not None:
        torch.set_num_threads(threads)


def check_train_config(cfg: DictConfig) -> None:
    """What no constructor checks, before anything is built: paths, ``validate_ckpt``,
    ``torch_threads``, and the scheduler and trainer values torch and Lightning accept but
    that cannot train (a StepLR with step_size 0 divides by zero in its first epoch).

    Raises:
        ConfigError: one line ``<field>: <reason>``.
    """
    if _value(cfg, "validate_ckpt") not in (_MISSING, *VALIDATE_CKPTS):
        raise ConfigError("validate_ckpt", f"{cfg.validate_ckpt!r} is not one of {VALIDATE_CKPTS}")
    ckpt_path = _value(cfg, "ckpt_path")
    if ckpt_path not in (_MISSING, None) and not Path(str(ckpt_path)).is_file():
        raise ConfigError("ckpt_path", f"{ckpt_path}: no such checkpoint file")
    root = _value(cfg, "data.root")
    if root is not _MISSING and not Path(str(root)).is_dir():
        raise ConfigError(
            "data.root",
            f"{root}: no such directory (build the synthetic data "
            "with `mri-recon-data synth --out DIR` or set MRI_RECON_DATA)",
        )
    require_number(cfg, "torch_threads", 1, integer=True)
    if cfg.get("scheduler"):
        require_number(cfg, "scheduler.step_size", 1, integer=True)
        require_number(cfg, "scheduler.T_max", 1, integer=True)
        require_number(cfg, "scheduler.gamma", 0, strict=True)
    if _value(cfg, "trainer.max_epochs") != -1:  # -1: no limit
        require_number(cfg, "trainer.max_epochs", 1, integer=True)
    if _value(cfg, "trainer.precision") not in (_MISSING, *PRECISIONS):
        raise ConfigError(
            "trainer.precision",
            f"must be one of {', '.join(PRECISIONS)}, got {cfg.trainer.precision!r}",
        )
    if _value(cfg, "trainer.use_distributed_sampler") not in (False, _MISSING):
        raise ConfigError(
            "trainer.use_distributed_sampler",
            "must be false: the data module's "
            "batch sampler buckets by k-space shape and shards across ranks itself",
        )
