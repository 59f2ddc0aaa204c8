"""``mri-recon-eval``: evaluate reconstruction methods on a fastMRI-layout split (Hydra).

    mri-recon-eval data.root=DIR data.challenge=singlecoil data.split=val mask=random_4x \\
        'methods=[zero_filled,tv,unet]' ckpt_path=RUN/checkpoints/best.ckpt tv.lam=0.01 \\
        hydra.run.dir=OUT
    mri-recon-eval -m mask=random_4x,random_8x      # one run directory per mask setting

:func:`evaluate` is a plain function of the composed ``configs/eval.yaml``: it checks the
methods, builds them and the ``evaluation`` node's :class:`EvalSettings`, and runs
:func:`mri_recon.evaluation.run_evaluation` (``per_volume.csv``, ``summary.md``,
``summary.json``, ``figures/``, ``reconstructions/`` in the run directory).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from mri_recon.baselines import BASELINES, CLASSICAL, Reconstructor
from mri_recon.cli.errors import ConfigError, first_problem, run_hydra_main
from mri_recon.cli.provenance import run_record
from mri_recon.cli.validate import build_group, check_shapes, set_torch_threads
from mri_recon.evaluation import EvalReport, EvalSettings, run_evaluation
from mri_recon.evaluation.report import REFERENCE

METHODS = (*BASELINES, "unet")
_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_methods(cfg: DictConfig) -> tuple[list[str], dict[str, str]]:
    """The method names and the named checkpoints (``{name: path}``) of an eval config.

    Methods are a non-empty list of distinct names, each built in (``unet`` needs an existing
    ``ckpt_path``) or a name of ``checkpoints``; those names become CSV values and folder
    names (letters, digits, ``_ . -``) and shadow no built-in method. ``stats.reference`` is
    a method (or the default, zero_filled, absent: then there are no paired differences).

    Raises:
        ConfigError: the first field that is wrong, and why.
    """
    checkpoints = {str(k): v for k, v in (cfg.get("checkpoints") or {}).items()}
    methods, ckpt = cfg.get("methods"), cfg.get("ckpt_path")
    names = [str(m) for m in methods] if OmegaConf.is_list(methods) else []
    unknown = [m for m in names if m not in METHODS and m not in checkpoints]
    known = f"known: {list(METHODS)}" + (
        f" and checkpoints {list(checkpoints)}" if checkpoints else ""
    )
    reference = OmegaConf.select(cfg, "stats.reference", default=REFERENCE)
    shadows = "shadows the built-in method {!r}; use ckpt_path for unet, or another name"
    problems = [
        *((f"checkpoints.{name}", problem) for name, path in checkpoints.items() for problem in (
            name in METHODS and shadows.format(name),
            not _CHECKPOINT_NAME.fullmatch(name) and "a name of letters, digits, _ . - is needed",
            not Path(str(path)).is_file() and f"{path}: no such checkpoint file",
        )),
        ("methods", not names
         and f"expected a non-empty list like [zero_filled,tv], got {methods!r}"),
        ("methods", unknown and f"unknown method(s) {unknown}; {known}"),
        ("methods", len(set(names)) != len(names) and f"a method is listed twice: {names}"),
        ("ckpt_path", "unet" in names and not ckpt
         and "the unet method needs ckpt_path=<run>/checkpoints/best.ckpt"),
        ("ckpt_path", "unet" in names and ckpt and not Path(str(ckpt)).is_file()
         and f"{ckpt}: no such checkpoint file"),
        ("stats.reference", reference not in (*names, REFERENCE)
         and f"{reference!r} is not one of the methods {names}"),
    ]  # fmt: skip
    first_problem(problems)
    return names, {name: str(path) for name, path in checkpoints.items()}


def _load_checkpoint(field: str, path: str, device: torch.device, challenge: str) -> Reconstructor:
    """The reconstructor of checkpoint ``path``: a U-Net for ``ckpt_path`` (the ``unet``
    method), any for a named checkpoint, built for the data's challenge."""
    from mri_recon.lit.checkpoint import load_reconstructor  # lazily: Lightning

    try:
        return load_reconstructor(path, device, challenge, image_only=field == "ckpt_path")
    except (FileNotFoundError, ValueError) as err:
        hint = (
            " (name it: +checkpoints.NAME=PATH 'methods=[...,NAME]')" if "U-Net" in str(err) else ""
        )
        raise ConfigError(field, f"{err}{hint}") from None


def build_methods(
    cfg: DictConfig, names: Sequence[str], device: torch.device, checkpoints: dict[str, str]
) -> dict[str, Reconstructor]:
    """Build each named method: baselines from the registry (the classical ones, ``tv``,
    ``cg_sense``, ``wavelet``, from their config groups ``cfg.<name>``),
    ``unet`` from ``cfg.ckpt_path`` and the names of ``checkpoints`` from their paths, on
    ``device`` (in eval mode)."""
    challenge = OmegaConf.select(cfg, "data.challenge")
    methods: dict[str, Reconstructor] = {}
    for name in names:
        if name in CLASSICAL:
            methods[name] = build_group(cfg, name)
        elif name == "unet":
            methods[name] = _load_checkpoint("ckpt_path", str(cfg.ckpt_path), device, challenge)
        elif name in checkpoints:
            field = f"checkpoints.{name}"
            methods[name] = _load_checkpoint(field, checkpoints[name], device, challenge)
        else:
            methods[name] = BASELINES[name]()
    return methods


def settings_from_config(cfg: DictConfig) -> EvalSettings:
    """The :class:`EvalSettings` of an ``eval`` (``robustness``, ``tune_tv``) config: its
    ``evaluation`` node, with the mask and coil maps built from their groups.

    Raises:
        ConfigError: a value a constructor rejects, naming the key the user set.
    """
    set_torch_threads(cfg)
    return build_group(
        cfg,
        "evaluation",
        mask_func=build_group(cfg, "mask"),
        coil_maps=build_group(cfg, "coils") if cfg.get("coils") else None,
        run_dir=Path(str(cfg.paths.output_dir)),
    )


def settings_and_methods(cfg: DictConfig) -> tuple[EvalSettings, dict[str, Reconstructor]]:
    """The checked settings and the built methods of an eval-style config (also the
    robustness grid's): methods and checkpoints, device, threads, settings."""
    names, checkpoints = check_methods(cfg)
    settings = settings_from_config(cfg)
    return settings, build_methods(cfg, names, settings.device, checkpoints)


def evaluate(cfg: DictConfig) -> EvalReport:
    """Run the evaluation of a composed ``configs/eval.yaml`` (``paths.output_dir`` is the
    run directory; from Python, compose with :func:`mri_recon.cli.notebook.compose_job` so
    that ``${hydra:...}`` resolves); returns the :class:`EvalReport`.

    Raises:
        ConfigError: a bad config value (one line naming the field).
        DataError: a bad input file (nothing is written).
    """
    settings, methods = settings_and_methods(cfg)
    record = run_record(cfg)
    # provenance.json is staged and published with the outputs it describes
    report = run_evaluation(settings, methods, record=partial(record.finish_eval, settings))
    print(report.markdown, flush=True)
    print(f"outputs: {settings.run_dir}", flush=True)
    return report


def precheck(cfg: DictConfig) -> None:
    """Before Hydra writes the run directory: the methods and the settings (the run's own
    checks, in its order), then the classical methods against the data's k-space shapes
    (``wavelet.levels``)."""
    names = check_methods(cfg)[0]
    settings_from_config(cfg)
    check_shapes(cfg, names)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-eval`` (Hydra command line)."""
    run_hydra_main(evaluate, "eval", argv, precheck=precheck)


if __name__ == "__main__":
    main()
