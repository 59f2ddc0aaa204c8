"""Self-contained checkpoints: rebuild the reconstructor from a ``.ckpt`` file alone.

:class:`mri_recon.lit.module.ReconModule` writes an ``"mri_recon"`` entry into every
checkpoint with the network's spec (``{"_target_": "pkg.module.Class", **kwargs}``, the
resolved model config) and the prefix of its weights in the state dict.
:func:`load_reconstructor` imports the ``_target_`` with ``importlib`` (no Hydra outside
``mri_recon/cli/``), builds it with the kwargs and loads the weights. :func:`check_resume`
says, before training resumes from a checkpoint, whether it is one the configured module can
continue (one line naming the file and what does not match).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mri_recon.models.reconstructor import ImageReconstructor, as_reconstructor
from mri_recon.runinfo.hashing import hash_file

CHECKPOINT_KEY = "mri_recon"
NET_PREFIX = "reconstructor.net."
FORMAT_VERSION = 1


def to_plain(value: Any) -> Any:
    """Recursively turn mappings into dicts and non-string sequences into lists.

    Makes an OmegaConf ``DictConfig``/``ListConfig`` (or any Mapping) picklable without
    OmegaConf, so the checkpoint loads anywhere torch does.
    """
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [to_plain(v) for v in value]
    return value


def net_spec_of(net: nn.Module) -> dict[str, Any]:
    """Infer the spec of a network that stores its constructor arguments as attributes.

    Works for :class:`mri_recon.models.unet.Unet` (and ``fastmri.models.Unet``).

    Args:
        net: the network instance.

    Returns:
        ``{"_target_": "module.Class", name: value, ...}`` for every constructor argument.
    """
    cls = type(net)
    spec: dict[str, Any] = {"_target_": f"{cls.__module__}.{cls.__qualname__}"}
    for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(net, name):
            raise ValueError(
                f"net_spec: cannot infer the constructor arguments of {cls.__qualname__} "
                f"(no attribute {name!r}); pass net_spec (the resolved model config)"
            )
        spec[name] = to_plain(getattr(net, name))
    return spec


def build_from_spec(spec: Mapping[str, Any], where: str = "net_spec") -> nn.Module:
    """Instantiate ``spec["_target_"](**kwargs)`` (keys starting with ``_`` are dropped).

    Args:
        spec: ``{"_target_": "pkg.module.Class", **kwargs}``.
        where: name used in error messages (e.g. the checkpoint path).

    Returns:
        The built ``nn.Module``.
    """
    target = spec.get("_target_") if isinstance(spec, Mapping) else None
    try:
        module_name, _, attr = target.rpartition(".")
        cls = getattr(importlib.import_module(module_name), attr)
    except (AttributeError, ImportError, ValueError) as err:  # no str, no module, no class
        cls = err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(
            f"{where}: net_spec needs a '_target_' naming an nn.Module class like "
            f"'pkg.module.Class', got {target!r} ({cls!r})"
        )
    return cls(**{k: v for k, v in spec.items() if not str(k).startswith("_")})


def read_checkpoint(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """The contents of a ReconModule checkpoint.

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file if it is not a torch checkpoint (empty, random
            bytes, truncated) or not a mri_recon one.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many types for a non-checkpoint file
        why = "empty file" if path.stat().st_size == 0 else type(err).__name__
        raise ValueError(f"{path}: not a torch checkpoint ({why})") from err
    info = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "net_spec" not in info or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a mri_recon checkpoint (no '{CHECKPOINT_KEY}' entry)")
    return ckpt


def _first_difference(field: str, saved: Mapping, configured: Mapping) -> str | None:
    """``<field>.<key> is A in the checkpoint, B in the config`` for the first key whose
    values differ (keys present on one side only are compared with "absent")."""
    for key in sorted(set(saved) | set(configured)):
        a, b = (to_plain(m[key]) if key in m else "absent" for m in (saved, configured))
        a, b = (v.tolist() if isinstance(v, torch.Tensor) else v for v in (a, b))
        if a != b:
            return f"{field}.{key} is {a!r} in the checkpoint, {b!r} in the config"
    return None


def _weights_difference(saved: Mapping[str, Any], model: Mapping[str, Any]) -> str | None:
    for key, value in model.items():
        if key not in saved:
            return f"weights: the checkpoint lacks {key}"
        if tuple(saved[key].shape) != tuple(value.shape):
            return (
                f"weights: {key} is {tuple(saved[key].shape)} in the checkpoint, "
                f"{tuple(value.shape)} in the model"
            )
    extra = sorted(set(saved) - set(model))
    return f"weights: the model has no {extra[0]}" if extra else None


def _hyperparameters(group: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer's param group without its parameters; ``lr`` is the configured one (a
    scheduler keeps it as ``initial_lr`` and changes ``lr``)."""
    out = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
    out["lr"] = group.get("initial_lr", group["lr"])
    return out


def _optimizer_difference(ckpt: dict, configured: Any) -> str | None:
    """What differs between the checkpoint's optimizer and scheduler states and those that
    ``configure_optimizers()`` returned (an optimizer, or Lightning's dict with a scheduler)."""
    optimizer, scheduler = configured, None
    if isinstance(configured, dict):
        optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    saved_groups = ckpt["optimizer_states"][0]["param_groups"]
    if len(ckpt["optimizer_states"]) != 1 or len(saved_groups) != len(optimizer.param_groups):
        return "optim: the checkpoint's optimizer state has other parameter groups"
    saved, config = _hyperparameters(saved_groups[0]), _hyperparameters(optimizer.param_groups[0])
    if set(saved) != set(config):
        return (
            f"optim: the checkpoint's optimizer has {', '.join(sorted(set(saved) - set(config)))}"
            f" where the configured {type(optimizer).__name__} has "
            f"{', '.join(sorted(set(config) - set(saved)))}"
        )
    saved_schedulers = ckpt.get("lr_schedulers") or []
    name = type(scheduler).__name__ if scheduler is not None else "none"
    if len(saved_schedulers) != (scheduler is not None) or (
        scheduler is not None and set(saved_schedulers[0]) != set(scheduler.state_dict())
    ):
        has = f"{len(saved_schedulers)} other" if saved_schedulers else "none"
        return f"scheduler: the checkpoint has {has}, the config builds {name}"
    return _first_difference("optim", saved, config)


def check_resume(ckpt_path: str | Path, module: Any, checkpoint_dir: str | None = None) -> None:
    """Check that training ``module`` can resume from ``ckpt_path``, before anything is written.

    Lightning would otherwise fail part-way (``size mismatch``, or ``KeyError: 'momentum'``
    at the first step of SGD restored from Adam's state) or silently restore the
    checkpoint's optimizer settings over the configured ones.

    Args:
        ckpt_path: the checkpoint to resume from.
        module: the configured ReconModule (its ``hparams.net_spec``, ``state_dict()`` and
            ``configure_optimizers()`` are compared with the checkpoint's).
        checkpoint_dir: the run's checkpoint folder, where a resumed run's checkpoint must
            lie (a resume continues its own run); None skips this check.

    Raises:
        FileNotFoundError, ValueError: one line naming the file and what does not match.
    """
    path = Path(ckpt_path)
    if checkpoint_dir is not None and path.resolve().parent != Path(checkpoint_dir).resolve():
        problem = (
            f"not in this run's checkpoint folder {checkpoint_dir}: a resume continues the "
            "run that wrote the checkpoint, in its directory"
        )
    else:
        problem = _resume_problem(read_checkpoint(path), module)
    if problem:
        raise ValueError(f"{path}: {problem}")


def _resume_problem(ckpt: dict, module: Any) -> str | None:
    """What keeps ``module`` from continuing ``ckpt`` (the first difference), or None."""
    if "optimizer_states" not in ckpt or "loops" not in ckpt:
        return "weights only (no optimizer or loop state): it cannot resume"
    saved_hparams = ckpt.get("hyper_parameters", {})
    common = [k for k in module.hparams if k != "net_spec" and k in saved_hparams]
    return (
        _first_difference("model", ckpt[CHECKPOINT_KEY]["net_spec"], module.hparams.net_spec)
        or _first_difference(
            "module",
            {k: saved_hparams[k] for k in common},
            {k: module.hparams[k] for k in common},
        )
        or _weights_difference(ckpt["state_dict"], module.state_dict())
        or _optimizer_difference(ckpt, module.configure_optimizers())
    )


def load_reconstructor(
    ckpt_path: str | Path,
    map_location: str | torch.device = "cpu",
    challenge: str | None = None,
    image_only: bool = False,
) -> nn.Module:
    """Rebuild the trained reconstructor from a ReconModule checkpoint, in eval mode.

    Args:
        ckpt_path: path of a ``.ckpt`` written by a Trainer fitting a ReconModule.
        map_location: device for the weights (``torch.load``'s ``map_location``).
        challenge: the data's challenge: a model built for one challenge (a VarNet's
            ``challenge``) must match it; None: not checked.
        image_only: the checkpoint must hold an image network (the ``unet`` method).

    Returns:
        the reconstructor (:func:`as_reconstructor` of the network: an
        :class:`ImageReconstructor`, or e.g. a ``VarNet`` itself) in eval mode on
        ``map_location``; its ``name`` is the one the checkpoint was trained under, its
        ``checkpoint`` ``"<file name> <sha256>"`` (DICOM series name and derive UIDs from it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file if it is not a mri_recon checkpoint, its
            weights do not fit the network its spec builds, or it is not the kind asked for.
    """
    path = Path(ckpt_path)
    ckpt = read_checkpoint(path, map_location)
    info = ckpt[CHECKPOINT_KEY]
    net = build_from_spec(info["net_spec"], where=str(path))
    prefix = info.get("net_prefix", NET_PREFIX)
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{path}: weights do not match net_spec ({first})") from err
    recon = as_reconstructor(net)
    recon.name = info.get("name", recon.name)
    recon.checkpoint = f"{path.name} {hash_file(path)['hash']}"  # names it in exported images
    if "challenge" in info:  # an imported U-Net knows the data it was trained on
        recon.challenge = info["challenge"]
    trained_on = getattr(recon, "challenge", None)  # built for one challenge (a VarNet)
    problem = image_only and not isinstance(recon, ImageReconstructor)
    problem = problem and f"holds a {type(recon).__name__}, not a U-Net (an image network)"
    problem = problem or (
        challenge is not None
        and trained_on not in (None, challenge)
        and f"a {trained_on} model cannot reconstruct {challenge} data"
    )
    if problem:
        raise ValueError(f"{path}: {problem}")
    return recon.to(map_location).eval()
