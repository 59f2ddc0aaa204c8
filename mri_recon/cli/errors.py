"""Run a Hydra entry point so that bad input comes out as ONE line on stderr.

:func:`run_hydra_main` composes the config on the user's overrides first (:func:`precompose`,
each value of every sweep for ``-m``), checks the run directory and calls the entry point's
``precheck``, all before Hydra writes anything; a failure is ``error: <field>: <reason>``
(exit 2). Then the real ``hydra.main`` runs the task, whose :class:`ConfigError` (exit 2) and
``ValueError`` (``DataError`` included; exit 1) become one line as well.
``HYDRA_FULL_ERROR=1`` re-raises with the traceback.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from mri_recon.cli.config import config_dir
from mri_recon.fileio import output_dir_problem, restored_on_failure

CONFIG_EXIT = 2  # a bad command line or config value
DATA_EXIT = 1  # bad input data or another ValueError raised by the task
# Hydra raises a bare ValueError for e.g. a group override that is not a string
_COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, ValueError)


class ConfigError(ValueError):
    """A bad config value; the message is ``<field>: <reason>`` on one line."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, one_line(reason)
        super().__init__(f"{field}: {self.reason}")


def first_problem(problems: Iterable[tuple[str, Any]]) -> None:
    """Raise a ConfigError for the first ``(field, problem)`` with a problem (not falsy)."""
    for field, problem in problems:
        if problem:
            raise ConfigError(field, problem)


def one_line(text: Any) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def fail(message: Any, code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def parse_command_line(argv: Sequence[str]) -> argparse.Namespace:
    """Hydra's flags and overrides as ``hydra.main`` reads them (pinned to the installed Hydra
    by ``tests/cli/test_errors.py``); a command line it cannot read is left to Hydra."""
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("overrides", nargs="*")
    for flags in ("-h --help", "--hydra-help", "--version", "--resolve", "-r --run",
                  "-m --multirun", "-sc --shell-completion"):  # fmt: skip
        parser.add_argument(*flags.split(), action="store_true")
    for flags in ("-c --cfg", "-p --package", "-cp --config-path", "-cn --config-name",
                  "-cd --config-dir", "--experimental-rerun"):  # fmt: skip
        parser.add_argument(*flags.split())
    parser.add_argument("-i", "--info", nargs="?", const="all")
    return parser.parse_known_args(list(argv))[0]


def precompose(config_name: str, overrides: Sequence[str], multirun: bool = False) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` on ``overrides`` as Hydra will (with ``-m``,
    each value of every sweep once); returns the first job's config, ``hydra`` node included.

    Raises:
        ConfigError: the override or key that does not compose, and why.
    """
    sets = [list(overrides)]
    try:
        if multirun:
            parsed = OverridesParser.create().parse_overrides(list(overrides))
            values = [
                [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
                if o.is_sweep_override()
                else [o.input_line]
                for o in parsed
            ]
            first = [v[0] for v in values]
            sets = [first] + [
                [*first[:i], v, *first[i + 1 :]] for i, vs in enumerate(values) for v in vs[1:]
            ]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return [compose(config_name, o, return_hydra_config=True) for o in sets][0]
    except _COMPOSE_ERRORS as exc:
        raise ConfigError(*_composition_error(exc, config_name, overrides)) from None
    finally:
        GlobalHydra.instance().clear()


def _composition_error(exc: Exception, config_name: str, overrides: Sequence[str]) -> tuple:
    """(field, reason) of a composition error; the field is the key OmegaConf names, the
    missing config group, or the first override that does not compose on its own."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else None
    field = getattr(cause, "full_key", None) or getattr(exc, "full_key", None)
    reason = str(getattr(cause, "msg", None) or cause or exc).strip() or type(exc).__name__
    reason = reason.splitlines()[0]
    if isinstance(exc, MissingConfigException):
        field = field or (exc.missing_cfg_file or "").rpartition("/")[0] or exc.missing_cfg_file
        reason += f" (available: {', '.join(sorted(exc.options))})" if exc.options else ""
    if "not in struct" in reason:
        reason = f"unknown key ({reason})"
    if "Ambiguous value" in reason:
        reason += " (a list: key=[a,b]; a sweep: add -m)"
    if not field:  # the first override that does not compose on its own
        bad = (o for o in overrides if not _composes(config_name, overrides, o))
        field = next((o.split("=", 1)[0].lstrip("+~") for o in bad), "command line")
    return field, reason


def _composes(config_name: str, overrides: Sequence[str], override: str) -> bool:
    """Whether ``override`` of ``overrides`` composes on its own (not when it is the only one)."""
    try:
        return len(overrides) > 1 and precompose(config_name, [override]) is not None
    except ConfigError:
        return False


def check_output_dir(cfg: DictConfig, multirun: bool = False) -> str | None:
    """The run (sweep) directory of a composed config, checked before Hydra creates it; None
    where it does not resolve (Hydra reports that).

    Raises:
        ConfigError: ``hydra.run.dir: <dir>: <why>`` for a directory (or its ``.hydra``) that
            runs through a file or cannot be created.
    """
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        run_dir = str(OmegaConf.select(cfg, key, throw_on_missing=True))
        subdir = None if multirun else OmegaConf.select(cfg, "hydra.output_subdir")
    except OmegaConfBaseException:
        return None
    paths = (run_dir, *([os.path.join(run_dir, subdir)] if subdir else []))
    first_problem((key, (p := output_dir_problem(path)) and f"{path}: {p}") for path in paths)
    return run_dir


def job_config(cfg: DictConfig, run_dir: str | os.PathLike, job_num: int = 0) -> DictConfig:
    """A composed config as a task sees it in ``run_dir``: its ``hydra`` node is registered
    with :class:`HydraConfig` (``${hydra:...}`` resolves) and removed."""
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = os.path.abspath(run_dir)
        cfg.hydra.job.num = int(job_num)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose ConfigError and Hydra/OmegaConf errors exit 2, and other ValueErrors
    (``DataError``: the message names the file) and OSErrors (disk full) exit 1, with one
    line."""

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return fn(*args)
        try:
            return fn(*args)
        except ConfigError as exc:
            fail(exc, CONFIG_EXIT)
        except (OmegaConfBaseException, HydraException) as exc:  # InstantiationException...
            key, msg = getattr(exc, "full_key", None), getattr(exc, "msg", None) or exc
            fail(f"{key}: {msg}" if key else msg, CONFIG_EXIT)
        except ValueError as exc:
            fail(exc, DATA_EXIT)
        except OSError as exc:  # disk full, a folder turned read-only: the path and why
            fail(f"{exc.filename or 'an output'}: {exc.strerror or exc}", DATA_EXIT)

    return wrapper


def _before_hydra(args: argparse.Namespace, config_name: str, precheck: Any) -> str | None:
    cfg = precompose(config_name, args.overrides, args.multirun)
    run_dir = check_output_dir(cfg, args.multirun)
    if precheck is not None and not args.multirun and run_dir is not None:
        precheck(job_config(cfg, run_dir))
    return None if args.multirun else run_dir


def _hydra_output_dir() -> str | None:
    """The run directory Hydra used (a ``${now:}`` in it may be a second later than composed)."""
    cfg = HydraConfig.instance().cfg
    return OmegaConf.select(cfg, "hydra.runtime.output_dir") if cfg is not None else None


def run_hydra_main(
    task_fn: Callable[[DictConfig], Any],
    config_name: str,
    argv: Sequence[str] | None = None,
    precheck: Callable[[DictConfig], None] | None = None,
) -> None:
    """Run ``task_fn(cfg)`` as a Hydra app on ``configs/<config_name>.yaml`` and ``argv``
    (default ``sys.argv[1:]``); ``precheck`` gets the job config of a single run before
    Hydra writes into its directory. Errors exit as :func:`guarded` says."""
    argv = list(sys.argv[1:] if argv is None else argv)
    app = hydra.main(version_base="1.3", config_path=config_dir(), config_name=config_name)
    saved, sys.argv = sys.argv, [sys.argv[0] if sys.argv else config_name, *argv]
    try:
        try:
            args = parse_command_line(argv)
        except argparse.ArgumentError:
            args = None  # Hydra's own parser reports it
        asks = args and (args.help or args.hydra_help or args.version or args.info)
        run_dir = None
        if args and not (asks or args.shell_completion or args.config_path
                         or args.config_name or args.config_dir):  # fmt: skip
            run_dir = guarded(_before_hydra)(args, config_name, precheck)
        # a failed task leaves an existing run's .hydra/ and log as they were, no new folder
        with restored_on_failure(run_dir, _hydra_output_dir):
            app(guarded(task_fn))()
    finally:
        sys.argv = saved
        # leave no Hydra state behind for the next in-process run (tests, notebooks)
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()
