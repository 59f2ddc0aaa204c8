"""fastMRI's released weights as this project's checkpoints (``mri-recon-import``).

fastMRI distributes trained networks as bare state dicts (``fastmri.models.Unet``: knee
single-coil, knee multi-coil, brain, 256 channels, 4 pools; ``fastmri.models.VarNet``: knee,
brain, 12 cascades; the files its ``run_pretrained_*_inference.py`` scripts load). A
converted checkpoint rebuilds with :func:`mri_recon.lit.checkpoint.load_reconstructor`:

- U-Net: :class:`mri_recon.models.unet.Unet` with ``norm="instance"`` (its affine at scale 1,
  shift 0 = fastMRI's affine-free InstanceNorm), ``residual=False``, wrapped in
  :class:`~mri_recon.models.reconstructor.ImageReconstructor`, which is fastMRI's
  ``UnetDataTransform`` normalisation (zero-filled magnitude cropped to the target size,
  ``(x - mean) / (std + 1e-11)`` per slice, clamped to [-6, 6]) and un-normalisation.
- VarNet: :class:`mri_recon.models.varnet.VarNet` with ``norm="instance"`` and
  ``maps="fastmri"`` (fastMRI's map band and, on single-coil data, its maps ``x / |x|``).

Sizes (channels, pools, cascades) are read from the tensors' shapes, so any size converts.
A state dict may also come inside a Lightning checkpoint of fastMRI's ``UnetModule`` /
``VarNetModule`` (``state_dict`` with keys prefixed ``unet.`` / ``varnet.``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mri_recon.fileio import atomic_path
from mri_recon.lit.checkpoint import CHECKPOINT_KEY, FORMAT_VERSION, NET_PREFIX, build_from_spec
from mri_recon.physics.coils import CHALLENGES
from mri_recon.runinfo.hashing import hash_file

KINDS = ("fastmri-unet", "fastmri-varnet")
_PREFIXES = {"fastmri-unet": ("unet.", "module."), "fastmri-varnet": ("varnet.", "module.")}
NORMALIZATION = {
    "fastmri-unet": "fastMRI UnetDataTransform: per-slice (x - mean) / (std + 1e-11), "
    "clamped to [-6, 6]; output * (std + 1e-11) + mean",
    "fastmri-varnet": "none (k-space in, image on the target's scale out)",
}


def _levels(state: dict[str, torch.Tensor], prefix: str) -> int:
    """How many ``<prefix><i>.`` modules the state dict holds."""
    found = {int(m.group(1)) for k in state if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(found) + 1 if found else 0


def _unet_size(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, int]:
    """in_chans, out_chans, chans, num_pool_layers of fastMRI's Unet weights under ``prefix``."""
    first = state[f"{prefix}down_sample_layers.0.layers.0.weight"]  # (chans, in, 3, 3)
    pools = _levels(state, f"{prefix}down_sample_layers.")
    last = state[f"{prefix}up_conv.{pools - 1}.1.weight"]  # (out, chans, 1, 1)
    return {
        "in_chans": int(first.shape[1]),
        "out_chans": int(last.shape[0]),
        "chans": int(first.shape[0]),
        "num_pool_layers": pools,
    }


def net_spec_for(kind: str, state: dict[str, torch.Tensor], challenge: str) -> dict[str, Any]:
    """The net spec (``_target_`` and constructor arguments) fastMRI's weights fit."""
    if kind == "fastmri-unet":
        return {
            "_target_": "mri_recon.models.unet.Unet",
            **_unet_size(state),
            "drop_prob": 0.0,
            "norm": "instance",
            "residual": False,
            "norm_groups": None,
        }
    cascade = _unet_size(state, "cascades.0.model.unet.")
    maps = _unet_size(state, "sens_net.unet.")  # renamed by convert
    return {
        "_target_": "mri_recon.models.varnet.VarNet",
        "num_cascades": _levels(state, "cascades."),
        "chans": cascade["chans"],
        "pools": cascade["num_pool_layers"],
        "sens_chans": maps["chans"],
        "sens_pools": maps["num_pool_layers"],
        "norm": "instance",
        "challenge": challenge,
        "maps": "fastmri",
    }


def read_state_dict(path: Path, kind: str) -> dict[str, torch.Tensor]:
    """The tensors of a fastMRI state dict file (bare, or a Lightning checkpoint's
    ``state_dict`` with the module's prefix), keys as ``fastmri.models`` names them."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a non-checkpoint file
        raise ValueError(f"{path}: not a torch state dict ({type(err).__name__})") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict (a mapping of names to tensors)")
    for prefix in _PREFIXES[kind]:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def convert(
    kind: str, state_dict: str | os.PathLike, out: str | os.PathLike, challenge: str | None = None
) -> Path:
    """Convert a fastMRI state dict into a checkpoint that ``load_reconstructor`` rebuilds.

    Args:
        kind: ``fastmri-unet`` or ``fastmri-varnet``.
        state_dict: the released ``.pt`` file.
        out: the checkpoint to write (atomically).
        challenge: the data it reconstructs, ``singlecoil`` or ``multicoil`` (the evaluation
            refuses the other); None: ``multicoil`` (the VarNets and 2 of the 3 U-Nets).

    Returns:
        ``out``.

    Raises:
        ValueError: one line naming the file: not a state dict, or weights that are not
            fastMRI's ``kind`` (the first missing, unexpected or misshapen tensor).
    """
    path, out = Path(state_dict), Path(out)
    if kind not in KINDS or (challenge or "multicoil") not in CHALLENGES:
        bad = ("kind", kind, KINDS) if kind not in KINDS else ("challenge", challenge, CHALLENGES)
        raise ValueError(f"{bad[0]}: must be one of {', '.join(bad[2])}, got {bad[1]!r}")
    challenge = challenge or "multicoil"
    state = read_state_dict(path, kind)
    if kind == "fastmri-varnet":  # our map network is the NormUnet's U-Net itself
        state = {
            k.replace("sens_net.norm_unet.unet.", "sens_net.unet."): v for k, v in state.items()
        }
    try:
        spec = net_spec_for(kind, state, challenge)
        net = build_from_spec(spec, where=str(path))
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: not {kind} weights (cannot read its sizes: {err})") from None
    expected = net.state_dict()
    # the only tensors fastMRI lacks are our instance norms' affine (kept at scale 1, shift 0)
    missing = [
        k for k in expected
        if k not in state and not isinstance(net.get_submodule(k.rpartition(".")[0]), nn.InstanceNorm2d)
    ]  # fmt: skip
    unexpected = [k for k in state if k not in expected]
    misshapen = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or misshapen:
        what = (missing and f"lacks {missing[0]}") or (
            unexpected and f"has an unknown {unexpected[0]}"
        )
        raise ValueError(f"{path}: not {kind} weights ({what or f'{misshapen[0]} is misshapen'})")
    net.load_state_dict(state, strict=False, assign=True)  # the file's tensors, not copies
    prefix = "reconstructor." if kind == "fastmri-varnet" else NET_PREFIX
    source = hash_file(path)
    ckpt = {
        "state_dict": {prefix + k: v for k, v in net.state_dict().items()},
        CHECKPOINT_KEY: {
            "format_version": FORMAT_VERSION,
            "net_spec": spec,
            "net_prefix": prefix,
            "name": kind.removeprefix("fastmri-"),
            "challenge": challenge,
            "normalization": NORMALIZATION[kind],
            "imported_from": {"kind": kind, "file": path.name, **source},
        },
    }
    with atomic_path(out) as tmp:
        torch.save(ckpt, tmp)
    return out
