"""mri-recon-export's core: exported U-Nets (TorchScript, ONNX on onnxruntime) and VarNets
(TorchScript) against the eager reconstructor, at sizes other than the export's example."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import mri_recon.lit.export
from mri_recon.lit.checkpoint import CHECKPOINT_KEY, NET_PREFIX, load_reconstructor
from mri_recon.lit.export import VARNET_ONNX_REFUSAL, export_checkpoint
from mri_recon.models.unet import Unet
from mri_recon.models.varnet import VarNet
from mri_recon.physics.zero_filled import zero_filled


def _save(net: torch.nn.Module, spec: dict, prefix: str, path: Path) -> Path:
    state = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save(
        {"state_dict": state, CHECKPOINT_KEY: {"net_spec": spec, "net_prefix": prefix}}, path
    )
    return path


def _unet_ckpt(tmp_path: Path) -> Path:
    spec = {"_target_": "mri_recon.models.unet.Unet", "chans": 4, "num_pool_layers": 2}
    torch.manual_seed(0)
    net = Unet(**{k: v for k, v in spec.items() if k != "_target_"})
    for p in net.parameters():  # away from the initial affine, so the norms matter too
        p.data += 0.1 * torch.randn_like(p)
    return _save(net, spec, NET_PREFIX, tmp_path / "unet.ckpt")


def _inputs(size: tuple[int, int], coils: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    kspace = torch.randn((2, coils, h + 6, w + 3), dtype=torch.complex64, generator=g) * 5
    mask = torch.rand((2, w + 3), generator=g) < 0.4
    return kspace * mask[:, None, None, :], mask


def _assert_parity(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() <= 1e-4 * (ref.max() - ref.min())


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "onnx-external"])
def test_unet_export_matches_eager_at_any_size(tmp_path, fmt, monkeypatch) -> None:
    if fmt == "onnx-external":  # weights too large for one protobuf: beside it, named by it
        monkeypatch.setattr("mri_recon.lit.export.EXTERNAL_BYTES", 0)
        fmt = "onnx"
    ckpt = _unet_ckpt(tmp_path)
    eager = load_reconstructor(ckpt)
    out = export_checkpoint(ckpt, fmt, tmp_path / f"unet.{fmt}")
    if fmt == "torchscript":
        extra = {"mri_recon.json": ""}
        module = torch.jit.load(str(out), _extra_files=extra)
        info = json.loads(extra["mri_recon.json"])

        def run(image: np.ndarray) -> np.ndarray:
            return module(torch.from_numpy(image)).detach().numpy()
    else:
        import onnx
        import onnxruntime

        external = tmp_path / "unet.onnx.data"
        assert external.is_file() == (mri_recon.lit.export.EXTERNAL_BYTES == 0)
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        info = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
        assert json.loads(onnx.load(str(out)).doc_string)["inputs"]["image"] == info["inputs"] or (
            "zero-filled" in info["inputs"]
        )

        def run(image: np.ndarray) -> np.ndarray:
            return session.run(["reconstruction"], {"image": image})[0]

    assert "zero-filled" in str(info["inputs"]) and "std" in info["normalization"]
    for size in ((21, 19), (32, 24)):  # odd and even, neither the export's example
        masked, mask = _inputs(size)
        with torch.no_grad():
            ref = eager(masked, mask, None, size).numpy()  # (B, h, w)
        image = zero_filled(masked, mask, size)[:, None].numpy()  # (B, 1, h, w)
        _assert_parity(run(image)[:, 0], ref)


def test_varnet_exports_to_torchscript_and_refuses_onnx(tmp_path) -> None:
    spec = {
        "_target_": "mri_recon.models.varnet.VarNet",
        "num_cascades": 2,
        "chans": 4,
        "pools": 2,
        "sens_chans": 4,
        "sens_pools": 2,
    }
    torch.manual_seed(0)
    net = VarNet(**{k: v for k, v in spec.items() if k != "_target_"})
    ckpt = _save(net, spec, "reconstructor.", tmp_path / "varnet.ckpt")
    with pytest.raises(ValueError, match=r"varnet\.ckpt: .*complex64.*ONNX") as err:
        export_checkpoint(ckpt, "onnx", tmp_path / "v.onnx")
    assert str(err.value).endswith(VARNET_ONNX_REFUSAL) and not (tmp_path / "v.onnx").exists()
    out = export_checkpoint(
        ckpt, "torchscript", tmp_path / "v.pt", kspace_shape=(3, 30, 29), crop_size=(16, 20)
    )
    module = torch.jit.load(str(out))
    masked, mask = _inputs((24, 26), coils=3)  # (2, 3, 30, 29)
    mask[:, 9:20] = True  # a wider centre band than the traced mask's
    masked = masked * mask[:, None, None, :]
    with torch.no_grad():
        ref = net.eval()(masked[:1], mask[:1], None, (16, 20)).numpy()
        _assert_parity(module(masked[:1], mask[:1]).numpy(), ref)
