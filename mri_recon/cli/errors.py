"""Run a Hydra entry point so that bad input comes out as ONE line on stderr.

Hydra prints composition problems (an unknown key, a missing config group option, a bad
override) over several lines, and a task's exception as a traceback. :func:`run_hydra_main`
first composes the config itself on the user's overrides (every value of every sweep, for
``-m``) and turns a failure into ``error: <field>: <reason>`` with exit status 2; then it
hands over to the real ``hydra.main``, so run directories, multirun and ``--cfg`` work as
usual. Inside the task, :class:`ConfigError` (a bad config value, exit 2) and ``ValueError``
(including the data layer's ``DataError``; exit 1) become one line as well; ``SystemExit``
passes through Hydra untouched. ``HYDRA_FULL_ERROR=1`` re-raises with the traceback.
Before Hydra creates anything, the run (or sweep) directory is checked too: one that runs
through a file or cannot be written is a one-line error naming the path, not a logging
traceback; and an entry point may check the composed job config there (training checks a
resume), before Hydra writes the run's ``.hydra/``. Every CLI's ``main`` is
``run_hydra_main(task, "<config name>", argv)``.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mri_recon.cli.config import config_dir
from mri_recon.fileio import output_dir_problem

CONFIG_EXIT = 2  # a bad command line or config value
DATA_EXIT = 1  # bad input data or another ValueError raised by the task

# what composing a config on bad overrides raises (Hydra raises a bare ValueError for e.g.
# a group override that is not a string)
_COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, ValueError)


class ConfigError(ValueError):
    """A bad config value; the message is ``<field>: <reason>`` on one line."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{field}: {self.reason}")


def one_line(text: Any) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def fail(message: Any, code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _override_sets(overrides: list[str], multirun: bool) -> list[list[str]]:
    """Override lists that together try every value of every sweep at least once."""
    if not multirun:
        return [overrides]
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = [
        list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.input_line] for o in parsed
    ]
    keys = [o.get_key_element() for o in parsed]

    def line(i: int, value: str) -> str:
        return f"{keys[i]}={value}" if parsed[i].is_sweep_override() else value

    first = [line(i, v[0]) for i, v in enumerate(values)]
    sets = [first]
    for i, vals in enumerate(values):
        for value in vals[1:]:
            sets.append([*first[:i], line(i, value), *first[i + 1 :]])
    return sets


def _compose_all(config_name: str, override_sets: Sequence[Sequence[str]]) -> DictConfig:
    """Compose ``config_name`` with each override list; returns the first config (with its
    ``hydra`` node)."""
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            composed = [
                compose(config_name, overrides=list(o), return_hydra_config=True)
                for o in override_sets
            ]
    finally:
        GlobalHydra.instance().clear()
    return composed[0]


def _culprit(config_name: str, overrides: Sequence[str]) -> str | None:
    """The key of the first override that fails to compose on its own."""
    for override in overrides:
        try:
            _compose_all(config_name, [[override]])
        except _COMPOSE_ERRORS:
            return override.split("=", 1)[0].lstrip("+~")
    return None


def _reason(exc: BaseException) -> str:
    """The first line of a composition error, made self-contained."""
    if isinstance(exc, MissingConfigException):
        reason = str(exc).strip().splitlines()[0]
        if exc.options:
            reason += f" (available: {', '.join(sorted(exc.options))})"
        return reason
    if isinstance(exc.__cause__, OmegaConfBaseException):
        msg = getattr(exc.__cause__, "msg", None) or str(exc.__cause__)
        reason = str(msg).strip().splitlines()[0]
        return f"unknown key ({reason})" if "not in struct" in reason else reason
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "Ambiguous value" in reason:
        reason += " (a list: key=[a,b]; a sweep: add -m)"
    return reason


def composition_error(exc: BaseException, config_name: str, overrides: Sequence[str]) -> str:
    """``<field>: <reason>`` for a Hydra/OmegaConf composition error."""
    field = getattr(exc.__cause__, "full_key", None) or getattr(exc, "full_key", None)
    if not field and isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        field = exc.missing_cfg_file.rpartition("/")[0] or exc.missing_cfg_file
    field = field or _culprit(config_name, overrides) or "command line"
    return f"{field}: {one_line(_reason(exc))}"


def precompose(config_name: str, overrides: list[str], multirun: bool = False) -> DictConfig:
    """Compose ``config_name`` on ``overrides`` (each sweep value for multirun).

    Raises:
        SystemExit: code 2 after printing ``error: <field>: <reason>``.

    Returns:
        The config composed with the first value of every sweep, ``hydra`` node included.
    """
    try:
        return _compose_all(config_name, _override_sets(overrides, multirun))
    except _COMPOSE_ERRORS as exc:
        fail(composition_error(exc, config_name, overrides), CONFIG_EXIT)


def check_output_dir(cfg: DictConfig, multirun: bool = False) -> str | None:
    """Check the run (or sweep) directory of a composed config before Hydra creates it.

    Returns:
        The resolved directory (None where it does not resolve; Hydra reports that).

    Raises:
        SystemExit: code 2 after printing ``error: hydra.run.dir: <dir>: <why>`` where the
            directory (or its ``.hydra``) runs through a file or cannot be created.
    """
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        run_dir = str(OmegaConf.select(cfg, key, throw_on_missing=True))
        subdir = None if multirun else OmegaConf.select(cfg, "hydra.output_subdir")
    except OmegaConfBaseException:
        return None
    for path in (run_dir, *([os.path.join(run_dir, subdir)] if subdir else [])):
        problem = output_dir_problem(path)
        if problem:
            fail(f"{key}: {path}: {problem}", CONFIG_EXIT)
    return run_dir


def job_config(cfg: DictConfig, run_dir: str) -> DictConfig:
    """A composed config as the task sees it in ``run_dir``: ``${hydra:...}`` resolves (the
    Hydra node is registered with :class:`HydraConfig`) and the ``hydra`` node is gone."""
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = os.path.abspath(run_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def guarded(task_fn: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Wrap a task so ConfigError / ValueError / config errors exit with one line."""

    @functools.wraps(task_fn)
    def wrapper(cfg: DictConfig) -> Any:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return task_fn(cfg)
        try:
            return task_fn(cfg)
        except ConfigError as exc:
            fail(exc, CONFIG_EXIT)
        except OmegaConfBaseException as exc:
            key = getattr(exc, "full_key", None)
            msg = str(getattr(exc, "msg", None) or exc).strip().splitlines()[0]
            fail(f"{key}: {msg}" if key else msg, CONFIG_EXIT)
        except HydraException as exc:  # e.g. InstantiationException
            fail(exc, CONFIG_EXIT)
        except ValueError as exc:  # DataError included: its message names the file
            fail(exc, DATA_EXIT)

    return wrapper


def run_hydra_main(
    task_fn: Callable[[DictConfig], Any],
    config_name: str,
    argv: Sequence[str] | None = None,
    precheck: Callable[[DictConfig], None] | None = None,
) -> None:
    """Run ``task_fn`` as a Hydra app on ``configs/<config_name>.yaml``.

    Args:
        task_fn: the task, a plain function of the composed config (e.g. ``train(cfg)``).
        config_name: the primary config, e.g. "eval" or "train".
        argv: the command line without the program name (default ``sys.argv[1:]``):
            overrides, ``-m``/``--multirun``, and Hydra's other flags.
        precheck: called with the job config of a single run after the run directory was
            checked and before Hydra writes into it; its errors are one line, as the task's.

    Raises:
        SystemExit: 2 for a bad command line or config value, 1 for bad data or another
            ``ValueError`` from the task; the reason is one ``error: ...`` line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = get_args_parser().parse_args(argv)  # Hydra's own: exits on --version, bad flags
    prints = args.help or args.hydra_help or args.info or args.shell_completion
    app = hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)(
        guarded(task_fn)
    )
    saved = sys.argv
    sys.argv = [saved[0] if saved else config_name, *argv]
    try:
        if not (prints or args.config_path or args.config_name or args.config_dir):
            cfg = precompose(config_name, args.overrides, multirun=args.multirun)
            run_dir = check_output_dir(cfg, args.multirun)
            if precheck is not None and not args.multirun and run_dir is not None:
                guarded(precheck)(job_config(cfg, run_dir))
        app()
    finally:
        sys.argv = saved
        # leave no Hydra state behind for the next in-process run (tests, notebooks)
        HydraConfig.instance().cfg = None
        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
