"""Self-contained checkpoints: rebuild the reconstructor from a ``.ckpt`` file alone.

:class:`mri_recon.lit.module.ReconModule` writes an ``"mri_recon"`` entry into every
checkpoint with the network's spec (``{"_target_": "pkg.module.Class", **kwargs}``, the
resolved model config) and the prefix of its weights in the state dict.
:func:`load_reconstructor` imports the ``_target_`` with ``importlib`` (no Hydra outside
``mri_recon/cli/``), builds it with the kwargs and loads the weights.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mri_recon.models.reconstructor import ImageReconstructor

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
    if not isinstance(target, str) or "." not in target:
        raise ValueError(f"{where}: net_spec needs a '_target_' like 'pkg.module.Class'")
    module_name, _, attr = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"{where}: cannot import net_spec._target_={target!r} ({err})") from err
    kwargs = {k: v for k, v in spec.items() if not str(k).startswith("_")}
    net = cls(**kwargs)
    if not isinstance(net, nn.Module):
        raise TypeError(f"{where}: net_spec._target_={target!r} did not build an nn.Module")
    return net


def load_reconstructor(
    ckpt_path: str | Path, map_location: str | torch.device = "cpu"
) -> ImageReconstructor:
    """Rebuild the trained reconstructor from a ReconModule checkpoint, in eval mode.

    Args:
        ckpt_path: path of a ``.ckpt`` written by a Trainer fitting a ReconModule.
        map_location: device for the weights (``torch.load``'s ``map_location``).

    Returns:
        :class:`ImageReconstructor` in eval mode on ``map_location``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file if it is not a mri_recon checkpoint or its
            weights do not fit the network its spec builds.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise ValueError(f"{path}: not a torch checkpoint ({type(err).__name__})") from err
    info = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "net_spec" not in info or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a mri_recon checkpoint (no '{CHECKPOINT_KEY}' entry)")
    net = build_from_spec(info["net_spec"], where=str(path))
    prefix = info.get("net_prefix", NET_PREFIX)
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise ValueError(f"{path}: weights do not match net_spec ({first})") from err
    recon = ImageReconstructor(net, name=info.get("name", "unet"))
    return recon.to(map_location).eval()
