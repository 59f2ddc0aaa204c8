"""Trained reconstructors for deployment outside Python (``mri-recon-export``).

A U-Net checkpoint exports as the whole image pipeline after the zero-filled image:
:class:`NormalizedImageNet` (fastMRI's per-slice normalisation, the network, the inverse
normalisation), to TorchScript (``torch.jit.script``) or ONNX (``torch.onnx.export`` with
dynamic batch, height and width). A VarNet exports to TorchScript (``torch.jit.trace`` at
the k-space shape it is given, which the trace fixes; each mask's centre band is found in
the graph);
ONNX has no complex tensors, so its complex FFTs refuse ONNX in one line. Each file says
what it expects: :func:`describe` is stored in it (TorchScript: the extra file
``mri_recon.json``; ONNX: the model's ``doc_string`` and ``metadata_props``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mri_recon.fileio import atomic_path
from mri_recon.lit.checkpoint import load_reconstructor
from mri_recon.models.reconstructor import ImageReconstructor

FORMATS = ("torchscript", "onnx")
EXTERNAL_BYTES = 1 << 30  # ONNX weights above this go to an external data file
VARNET_ONNX_REFUSAL = (
    "a VarNet cannot be exported to ONNX: its centred FFTs run on complex64 tensors, which "
    "ONNX (and torch.onnx) do not represent; use --format torchscript"
)


class NormalizedImageNet(nn.Module):
    """An :class:`ImageReconstructor` after its zero-filled image: float32 (B, 1, h, w)
    zero-filled magnitude -> float32 (B, 1, h, w) reconstruction on the same scale, with the
    per-slice normalisation ``clamp((x - mean) / (std + eps))`` and its inverse inside."""

    def __init__(self, recon: ImageReconstructor) -> None:
        super().__init__()
        self.net, self.eps, self.clamp = recon.net, float(recon.eps), float(recon.clamp)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        std, mean = torch.std_mean(image, dim=(-2, -1), keepdim=True)  # (B, 1, 1, 1) each
        std = std + self.eps
        x = ((image - mean) / std).clamp(-self.clamp, self.clamp)
        return self.net(x) * std + mean


def describe(
    recon: nn.Module, source: str, shape: tuple[int, ...] | None, crop_size: tuple[int, int]
) -> dict[str, Any]:
    """What an exported file expects and returns (stored in the file); ``shape`` and
    ``crop_size``: a traced VarNet's k-space (B, C, H, W) and output (h, w)."""
    common = {"mri_recon_export": 1, "checkpoint": source, "method": recon.name}
    if isinstance(recon, ImageReconstructor):
        return {
            **common,
            "inputs": {
                "image": "float32 (B, 1, h, w), h and w any size >= 2**num_pool_layers: the "
                "zero-filled magnitude of the masked k-space (centred orthonormal 2-D IFFT; "
                "|.| single-coil, root-sum-of-squares over coils multi-coil), centre-cropped "
                "to the output size (fastMRI: 320 x 320), on any intensity scale"
            },
            "outputs": {"reconstruction": "float32 (B, 1, h, w), on the input's scale"},
            "normalization": f"inside the model, per slice: x = clamp((image - mean) / "
            f"(std + {recon.eps:g}), -{recon.clamp:g}, {recon.clamp:g}) (std unbiased); "
            "reconstruction = net(x) * (std + eps) + mean (fastMRI's UnetDataTransform)",
        }
    return {
        **common,
        "inputs": {
            "masked_kspace": f"complex64 (B, C, H, W) = {shape}: measured k-space, unsampled "
            "columns zero (centred orthonormal FFT convention)",
            "mask": "bool (B, W): the sampled columns",
        },
        "outputs": {
            "reconstruction": f"float32 (B, h, w) = (B, {crop_size[0]}, {crop_size[1]}): the "
            "root-sum-of-squares image, centre-cropped, on the k-space's scale"
        },
        "normalization": "none (the VarNet's U-Nets normalise their own inputs)",
        "traced": f"for masked_kspace {shape} only (the trace fixes the shapes)",
    }


def export_checkpoint(
    ckpt_path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    kspace_shape: tuple[int, int, int] = (1, 640, 368),
    crop_size: tuple[int, int] = (320, 320),
) -> Path:
    """Export the reconstructor of ``ckpt_path`` to ``out`` (written atomically).

    Args:
        ckpt_path: a mri_recon checkpoint (trained or imported).
        fmt: ``torchscript`` or ``onnx``.
        out: the file to write.
        kspace_shape, crop_size: (C, H, W) and (h, w) a VarNet is traced at.

    Raises:
        ValueError: an unknown format, or a VarNet to ONNX (one line saying why).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    recon = load_reconstructor(ckpt_path)
    if not isinstance(recon, ImageReconstructor) and fmt == "onnx":
        raise ValueError(f"{ckpt_path}: {VARNET_ONNX_REFUSAL}")
    source = getattr(recon, "checkpoint", Path(ckpt_path).name)
    if isinstance(recon, ImageReconstructor):
        module, shape = NormalizedImageNet(recon).eval(), None
    else:
        module, shape = _TracedVarNet(recon, crop_size).eval(), (1, *kspace_shape)
    info = describe(recon, source, shape, tuple(crop_size))
    with atomic_path(out) as tmp, torch.no_grad():
        if fmt == "torchscript":
            _torchscript(module, shape, tmp, info)
        else:
            _onnx(module, recon, tmp, info, str(out))
    return Path(out)


class _TracedVarNet(nn.Module):
    def __init__(self, net: nn.Module, crop_size: tuple[int, int]) -> None:
        super().__init__()
        self.net, self.crop_size = net, tuple(crop_size)

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(masked_kspace, mask, None, self.crop_size)


def _torchscript(module: nn.Module, shape: tuple | None, path: Path, info: dict) -> None:
    if shape is None:
        scripted = torch.jit.script(module)
    else:  # a VarNet: traced on a centred 4x mask of that shape
        width = shape[-1]
        mask = torch.zeros((shape[0], width), dtype=torch.bool)
        mask[:, ::4] = True
        mask[:, width // 2 - width // 25 : width // 2 + width // 25 + 1] = True
        kspace = torch.randn(shape, dtype=torch.complex64) * mask[:, None, None, :]
        scripted = torch.jit.trace(module, (kspace, mask), check_trace=False)
    torch.jit.save(scripted, str(path), _extra_files={"mri_recon.json": json.dumps(info)})


def _onnx(
    module: nn.Module, recon: ImageReconstructor, path: Path, info: dict, out_name: str
) -> None:
    import onnx  # the onnx extra

    side = 2**recon.net.num_pool_layers * 4
    dims = {
        0: torch.export.Dim("batch"),
        2: torch.export.Dim("height"),
        3: torch.export.Dim("width"),
    }
    program = torch.onnx.export(
        module,
        (torch.rand(2, 1, side, side + 2),),
        dynamic_shapes={"image": dims},
        input_names=["image"],
        output_names=["reconstruction"],
        verbose=False,
    )
    model = program.model_proto
    model.doc_string = json.dumps(info, indent=1)
    for key, value in info.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    # protobuf holds at most 2 GiB: larger weights (fastMRI's 256-channel U-Net is ~2 GB) go
    # to <out>.data beside the model, which names it
    external = sum(p.numel() * p.element_size() for p in module.parameters()) > EXTERNAL_BYTES
    location = f"{Path(out_name).name}.data"
    onnx.save(model, str(path), save_as_external_data=external, location=location)
