"""The one builder of config groups, and the few checks no constructor can make.

Constructors check their own arguments and name the argument in the message
(``accelerations: ...``); :func:`build_group` knows the group it built and makes the message
one :class:`~mri_recon.cli.errors.ConfigError` line naming the config field the user set
(``error: mask.accelerations: ...``). :func:`check_train_config` covers what no constructor
sees: paths, and values torch and Lightning accept but that cannot train.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mri_recon import checks
from mri_recon.cli.errors import ConfigError, first_problem, one_line
from mri_recon.fileio import output_dir_problem

# Lightning accepts more (16-true, bf16-true, 64-true): those cast the batch, so the targets
# and metrics would leave float32; ReconModule keeps the physics in float32 under these only
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def _field(cfg: DictConfig, group: str, arg: str) -> str | None:
    """The config key of argument ``arg`` of ``cfg.<group>``: ``x.y`` where its value is
    ``${x.y}``, else ``<group>.<arg>`` (also for ``arg.key``, a key inside a mapping argument
    such as ``format_options.target``); None when ``arg`` is not a key of the node."""
    node = OmegaConf.select(cfg, group)
    head, dot, _ = arg.partition(".")
    if not isinstance(node, DictConfig) or (head if dot else arg) not in node:
        return None
    if dot:
        return f"{group}.{arg}"
    raw = OmegaConf.to_container(node, resolve=False)[arg]
    inner = raw[2:-1] if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") else ""
    return inner if inner and all(p.isidentifier() for p in inner.split(".")) else f"{group}.{arg}"


def config_error(
    cfg: DictConfig, group: str, err: BaseException, groups: Mapping[str, str] | None = None
) -> ConfigError:
    """The one-line ConfigError for ``err``, raised while building ``cfg.<group>``.

    ``arg: reason`` names the key ``arg`` (see :func:`_field`), or, where ``arg`` is an
    argument built from another group (``groups``, e.g. ``{"optimizer": "optim"}``), that
    group; any other message names the group: ``<group>: message``.
    """
    if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
        return ConfigError(err.full_key, str(getattr(err, "msg", err)).strip().splitlines()[0])
    reason = one_line(err.__cause__ or err)
    if isinstance(err.__cause__, ImportError):  # Hydra could not import the _target_
        return ConfigError(f"{group}._target_", reason)
    unknown = re.search(r"got an unexpected keyword argument '(\w+)'", reason)
    if unknown:  # a key added to a _target_ node (+grid.seeds=3): name it, not the call
        return ConfigError(f"{group}.{unknown[1]}", "unknown key (not an argument of its _target_)")
    arg, sep, rest = reason.partition(": ")
    groups = groups or {}
    head, dot, tail = arg.partition(".")  # "optim._target_: ..." from the module that built it
    if sep and (head in groups or head in groups.values()):
        if dot:
            return ConfigError(f"{groups.get(head, head)}.{tail}", rest)
        return config_error(cfg, groups.get(arg, arg), ValueError(rest))
    field = _field(cfg, group, arg) if sep else None
    if field:
        return ConfigError(field, rest)
    return ConfigError(group, reason)


def build_group(
    cfg: DictConfig, group: str, groups: Mapping[str, str] | None = None, **kwargs: Any
) -> Any:
    """``hydra.utils.instantiate(cfg.<group>, **kwargs)``; errors become one-line ConfigErrors.

    Args:
        groups: for keyword arguments built from other groups, their group
            (``{"optimizer": "optim"}``), so their errors name it.

    Raises:
        ConfigError: see :func:`config_error`.
    """
    try:
        return instantiate(OmegaConf.select(cfg, group), **kwargs)
    except (HydraException, OmegaConfBaseException, ValueError, TypeError) as err:
        raise config_error(cfg, group, err, groups) from None


def checked(check: Any, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
    """``check(key, value, ...)`` of :mod:`mri_recon.checks`, its error a ConfigError."""
    try:
        return check(key, value, *args, **kwargs)
    except ValueError as err:
        raise ConfigError(key, str(err).removeprefix(f"{key}: ")) from None


def data_reader(cfg: DictConfig) -> Any:
    """The reader of ``data.format`` with ``data.format_options`` (fastMRI where the config
    has no format); a bad value is a ConfigError naming ``data.format...``."""
    from mri_recon.data.formats import get_reader

    data = cfg.get("data") or {}
    try:
        return get_reader(data.get("format") or "fastmri", data.get("format_options"))
    except ValueError as err:
        key, _, reason = str(err).partition(": ")
        raise ConfigError(f"data.{key}", reason) from None


def set_torch_threads(cfg: DictConfig) -> None:
    """Apply ``torch_threads`` (null: torch's default, the number of cores).

    Small convolutions gain nothing from a second OpenMP thread on 2 cores next to a data
    worker, and lose a lot when the cores are shared. The environment variable cannot do
    this: torch is imported already.
    """
    threads = checked(checks.positive_int, "torch_threads", cfg.get("torch_threads"), optional=True)
    if threads is not None:
        torch.set_num_threads(threads)


def check_train_config(cfg: DictConfig) -> None:
    """What no constructor checks, before anything is built: paths, ``torch_threads``, and
    the optimizer, scheduler and trainer values torch and Lightning accept but that cannot
    train (a StepLR with step_size 0 divides by zero in its first epoch).

    Raises:
        ConfigError: one line ``<field>: <reason>``.
    """
    root, ckpt = OmegaConf.select(cfg, "data.root"), cfg.get("ckpt_path")
    no_data = "no such directory (build the synthetic data with `mri-recon-data synth --out DIR`"
    first_problem([
        *_folder_problems(cfg),
        ("ckpt_path", ckpt is not None and not Path(str(ckpt)).is_file()
         and f"{ckpt}: no such checkpoint file"),
        ("data.root", root is not None and not Path(str(root)).is_dir()
         and f"{root}: {no_data} or set MRI_RECON_DATA)"),
        ("trainer.use_distributed_sampler",
         OmegaConf.select(cfg, "trainer.use_distributed_sampler") not in (False, None)
         and "must be false: the data module's batch sampler buckets by k-space shape and "
         "shards across ranks itself"),
    ])  # fmt: skip
    set_torch_threads(cfg)
    for check, key, *args in (
        (checks.positive, "optim.lr"),
        (checks.positive_int, "scheduler.step_size"),
        (checks.positive_int, "scheduler.T_max"),
        (checks.positive, "scheduler.gamma"),
        (checks.one_of, "trainer.precision", PRECISIONS),
    ):
        if OmegaConf.select(cfg, key) is not None:
            checked(check, key, OmegaConf.select(cfg, key), *args)
    if OmegaConf.select(cfg, "trainer.max_epochs") not in (-1, None):  # -1: no limit
        checked(checks.positive_int, "trainer.max_epochs", cfg.trainer.max_epochs)


def _folder_problems(cfg: DictConfig) -> Iterator[tuple[str, str | None]]:
    """``(field, problem)`` of each checkpoint and log folder that cannot be a folder."""
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            key, folder = "dirpath", (node or {}).get("dirpath")
            if not folder and (node or {}).get("save_dir"):  # <save_dir>/<name>/version_<n>
                key, folder = "save_dir", os.path.join(node.save_dir, node.get("name") or "")
            problem = folder and output_dir_problem(folder)
            where = problem and (
                problem if problem.startswith(str(folder)) else f"{folder}: {problem}"
            )
            yield f"{group}.{name}.{key}", where


def check_shapes(cfg: DictConfig, names: Any, **overrides: Any) -> None:
    """The classical methods among ``names``, built from their groups (with ``overrides``),
    against the k-space shapes of ``cfg.data``'s split
    (:func:`mri_recon.evaluation.volumes.check_shapes`): the entry points' pre-flight, after
    their config checks and before Hydra writes the run directory."""
    from mri_recon.baselines import CLASSICAL
    from mri_recon.evaluation.volumes import check_shapes as check

    methods = [build_group(cfg, name, **overrides) for name in names if name in CLASSICAL]
    data = cfg.data
    check(methods, data.root, data.challenge, data.split, data_reader(cfg))
