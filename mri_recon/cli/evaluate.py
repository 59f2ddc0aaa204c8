"""``mri-recon-eval``: evaluate reconstruction methods on a fastMRI-layout split (Hydra).

    mri-recon-eval data.root=DIR data.challenge=singlecoil data.split=val mask=random_4x \\
        'methods=[zero_filled,tv,unet]' ckpt_path=RUN/checkpoints/best.ckpt tv.lam=0.01 \\
        hydra.run.dir=OUT
    mri-recon-eval -m mask=random_4x,random_8x      # one run directory per mask setting

:func:`evaluate` is a plain function of the composed ``configs/eval.yaml``: it checks the
config (a bad value is a one-line :class:`ConfigError` naming the field), builds the methods
(``tv`` from the ``tv`` group, ``unet`` from ``ckpt_path``), and runs
:func:`mri_recon.evaluation.run_evaluation`, which writes ``per_volume.csv``,
``summary.md``, ``summary.json``, ``figures/`` and ``reconstructions/<method>/<fname>``
into the run directory; the Markdown summary is printed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf

from mri_recon.baselines import BASELINES, Reconstructor
from mri_recon.cli.config import register_resolvers
from mri_recon.cli.errors import ConfigError, one_line, run_hydra_main
from mri_recon.cli.provenance import RunRecord
from mri_recon.cli.validate import build_group, set_torch_threads
from mri_recon.evaluation import EvalReport, EvalSettings, run_evaluation
from mri_recon.evaluation.report import REFERENCE
from mri_recon.models.reconstructor import ImageReconstructor
from mri_recon.physics.masks import ColumnMaskFunc

LEARNED = ("unet",)
_ABSENT = object()
METHODS = (*BASELINES, *LEARNED)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available else cpu; ``cpu``, ``cuda``, ``cuda:N`` as given.

    Raises:
        ConfigError: an unknown name, or CUDA asked for but not available.
    """
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError("device", f"{name!r} is not one of auto, cpu, cuda, cuda:N")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError("device", str(err)) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{name!r} asked for, but CUDA is not available here")
    return device


def mask_name(mask_func: ColumnMaskFunc) -> str:
    """The mask's config name: Hydra's choice of the ``mask`` group when running under
    Hydra, else rebuilt from its fields as the presets are named (``random_4x``,
    ``random_4x8x``, ``equispaced_fraction_8x``)."""
    if HydraConfig.initialized():
        choice = HydraConfig.get().runtime.choices.get("mask")
        if choice:
            return str(choice)
    return f"{mask_func.mask_type}_" + "".join(f"{a:g}x" for a in mask_func.accelerations)


_CHECKPOINT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_checkpoints(checkpoints: Any) -> dict[str, str]:
    """``checkpoints``: named trained models, ``{name: path}``, each name usable as a method.

    Names become CSV values and directory names (``reconstructions/<name>/``), so they are
    letters, digits, ``_ . -``, and must not shadow a built-in method.
    """
    if checkpoints is None:
        return {}
    if not isinstance(checkpoints, (DictConfig, dict)):
        raise ConfigError("checkpoints", f"expected a mapping name: path, got {checkpoints!r}")
    named = {}
    for name, path in checkpoints.items():
        name = str(name)
        if not _CHECKPOINT_NAME.fullmatch(name):
            raise ConfigError(f"checkpoints.{name}", "a name of letters, digits, _ . - is needed")
        if name in METHODS:
            raise ConfigError(
                f"checkpoints.{name}",
                f"shadows the built-in method {name!r}; use ckpt_path for unet, or another name",
            )
        if path is None or not Path(str(path)).is_file():
            raise ConfigError(f"checkpoints.{name}", f"{path}: no such checkpoint file")
        named[name] = str(path)
    return named


def check_methods(
    methods: Any, ckpt_path: Any, checkpoints: dict[str, str] | None = None
) -> list[str]:
    """The method names, checked: a non-empty list of distinct names, each a built-in method
    or a key of ``checkpoints``; ``unet`` needs an existing ``ckpt_path``."""
    checkpoints = checkpoints or {}
    if not isinstance(methods, (ListConfig, list, tuple)) or not methods:
        raise ConfigError(
            "methods", f"expected a non-empty list like [zero_filled,tv], got {methods!r}"
        )
    names = [str(m) for m in methods]
    unknown = [m for m in names if m not in METHODS and m not in checkpoints]
    if unknown:
        raise ConfigError(
            "methods",
            f"unknown method(s) {unknown}; known: {list(METHODS)}"
            + (f" and checkpoints {list(checkpoints)}" if checkpoints else ""),
        )
    if len(set(names)) != len(names):
        raise ConfigError("methods", f"a method is listed twice: {names}")
    if "unet" in names:
        if not ckpt_path:
            raise ConfigError(
                "ckpt_path", "the unet method needs ckpt_path=<run>/checkpoints/best.ckpt"
            )
        if not Path(str(ckpt_path)).is_file():
            raise ConfigError("ckpt_path", f"{ckpt_path}: no such checkpoint file")
    return names


def check_reference(reference: Any, names: Sequence[str]) -> str:
    """``stats.reference``: the method paired differences subtract; one of the methods
    (the default, zero_filled, may be absent: then there are no paired differences)."""
    reference = str(reference)
    if reference not in names and reference != REFERENCE:
        raise ConfigError(
            "stats.reference", f"{reference!r} is not one of the methods {list(names)}"
        )
    return reference


def _load_checkpoint(
    field: str, path: str, device: torch.device, challenge: str | None = None
) -> Reconstructor:
    """The reconstructor of checkpoint ``path``: a U-Net for ``ckpt_path`` (the ``unet``
    method), any for a named checkpoint; one that takes only one challenge's k-space (a
    VarNet's ``challenge``) must match ``challenge``, the data's."""
    try:  # lazily: the training package is needed only for learned methods
        from mri_recon.lit.checkpoint import load_reconstructor
    except ImportError as err:
        raise ConfigError("methods", f"learned methods need mri_recon.lit ({err})") from None
    try:
        method = load_reconstructor(path, map_location=device)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(field, str(err)) from None
    if field == "ckpt_path" and not isinstance(method, ImageReconstructor):
        raise ConfigError(
            field,
            f"{path}: holds a {type(method).__name__}, not a U-Net (the unet method); name it "
            f"instead: +checkpoints.NAME={path} 'methods=[...,NAME]'",
        )
    trained_on = getattr(method, "challenge", None)
    if challenge is not None and trained_on not in (None, challenge):
        raise ConfigError(
            field, f"{path}: a {trained_on} model cannot reconstruct data.challenge={challenge}"
        )
    return method


def build_methods(
    cfg: DictConfig,
    names: Sequence[str],
    device: torch.device,
    checkpoints: dict[str, str] | None = None,
) -> dict[str, Reconstructor]:
    """Build each named method: baselines from the registry (``tv`` from ``cfg.tv``),
    ``unet`` from ``cfg.ckpt_path`` and the names of ``checkpoints`` from their paths, on
    ``device`` (in eval mode)."""
    checkpoints = checkpoints or {}
    challenge = OmegaConf.select(cfg, "data.challenge")
    methods: dict[str, Reconstructor] = {}
    for name in names:
        if name == "tv":
            methods[name] = build_group(cfg, "tv")
        elif name == "unet":
            methods[name] = _load_checkpoint("ckpt_path", str(cfg.ckpt_path), device, challenge)
        elif name in checkpoints:
            field = f"checkpoints.{name}"
            methods[name] = _load_checkpoint(field, checkpoints[name], device, challenge)
        else:
            methods[name] = BASELINES[name]()
    return methods


# EvalSettings' fields and the config keys that hold them (absent keys keep the default)
_SETTINGS_KEYS = {
    "root": "data.root",
    "challenge": "data.challenge",
    "split": "data.split",
    "skip_bad_files": "data.skip_bad_files",
    "max_volumes": "data.max_volumes",
    "batch_size": "batch_size",
    "num_figures": "num_figures",
    "confidence": "stats.confidence",
    "num_resamples": "stats.num_resamples",
    "seed": "stats.seed",
    "progress": "progress",
    "export": "export",
    "prescan": "data.prescan",
}


def settings_from_config(
    cfg: DictConfig, device: torch.device, reference: str = REFERENCE
) -> EvalSettings:
    """The :class:`EvalSettings` of a composed ``eval`` (or ``tune_tv``) config; ``reference``
    is the checked ``stats.reference``.

    Raises:
        ConfigError: a value that EvalSettings or the mask function rejects, naming its key.
    """
    mask_func = build_group(cfg, "mask")
    coil_maps = build_group(cfg, "coils") if cfg.get("coils") else None
    values = {
        name: OmegaConf.select(cfg, key)
        for name, key in _SETTINGS_KEYS.items()
        if OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT
    }
    try:
        return EvalSettings(
            **{**values, "root": Path(str(values["root"]))},
            mask_name=mask_name(mask_func),
            mask_func=mask_func,
            run_dir=Path(str(cfg.paths.output_dir)),
            device=device,
            reference=reference,
            provenance=True,
            coil_maps=coil_maps,
        )
    except (ValueError, TypeError) as err:
        field, _, reason = one_line(err).partition(": ")
        raise ConfigError(_SETTINGS_KEYS.get(field, field), reason) from None


def settings_and_methods(cfg: DictConfig) -> tuple[EvalSettings, dict[str, Any]]:
    """The checked settings and the built methods of an eval-style config (also the
    robustness grid's): checkpoints, method names, reference, device, threads."""
    checkpoints = check_checkpoints(cfg.get("checkpoints"))
    names = check_methods(cfg.methods, cfg.ckpt_path, checkpoints)
    reference = check_reference(cfg.stats.get("reference", REFERENCE), names)
    device = resolve_device(cfg.device)
    set_torch_threads(cfg)
    settings = settings_from_config(cfg, device, reference)
    return settings, build_methods(cfg, names, device, checkpoints)


def evaluate(cfg: DictConfig) -> EvalReport:
    """Run the evaluation described by a composed ``configs/eval.yaml``.

    Args:
        cfg: the config; ``paths.output_dir`` is the run directory.

    Returns:
        The :class:`EvalReport` (rows, summary, Markdown, skipped files, written files).

    Raises:
        ConfigError: a bad config value (one line naming the field).
        DataError: a bad input file (nothing is written).
    """
    settings, methods = settings_and_methods(cfg)
    record = RunRecord(cfg)
    report = run_evaluation(settings, methods)
    record.finish_eval(settings, report)  # provenance.json
    print(report.markdown, flush=True)
    print(f"outputs: {settings.run_dir}", flush=True)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point ``mri-recon-eval`` (Hydra command line)."""
    register_resolvers()
    run_hydra_main(evaluate, "eval", argv)


if __name__ == "__main__":
    main()
