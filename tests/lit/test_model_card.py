"""Model cards from a run's record, its final validation rows and its checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from mri_recon.lit.checkpoint import CHECKPOINT_KEY, NET_PREFIX
from mri_recon.lit.model_card import write_model_card
from mri_recon.models.unet import Unet
from mri_recon.runinfo.hashing import hash_file

SPEC = {"_target_": "mri_recon.models.unet.Unet", "chans": 4, "num_pool_layers": 2}


def _segment(root, paths) -> dict:
    return {
        "config": {
            "seed": 3,
            "data": {"challenge": "singlecoil"},
            "trainer": {"accelerator": "cpu"},
        },
        "data": {"root": str(root), "files": [hash_file(p) for p in paths]},
        "masks": {"mask_func": {"mask_type": "random", "accelerations": [4.0]}},
        "resources": {"wall_seconds": 7200.0, "gpu_hours": None, "cpu_core_hours": 4.0},
        "code": {"commit": "abc123", "dirty": True},
    }


@pytest.mark.parametrize("synthetic", [True, False])
def test_model_card_beside_best_ckpt(tmp_path, fastmri_split, synthetic) -> None:
    root = tmp_path / "data"
    train = fastmri_split(root, split="train", widths=(36, 40, 38), num_slices=3)
    val = fastmri_split(root, split="val", widths=(36, 40), num_slices=2)
    if synthetic:
        (root / "synthetic_singlecoil.json").write_text("{}")
    net = Unet(chans=4, num_pool_layers=2)
    ckpt = tmp_path / "run/checkpoints/best.ckpt"
    ckpt.parent.mkdir(parents=True)
    state = {NET_PREFIX + k: v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, CHECKPOINT_KEY: {"net_spec": SPEC, "name": "unet"}}, ckpt)
    volumes = [
        {"fname": "a.h5", "num_slices": 2, "ssim": 0.8, "psnr": 30.0, "nmse": 0.02},
        {"fname": "b.h5", "num_slices": 2, "ssim": 0.9, "psnr": 32.0, "nmse": 0.01},
    ]
    segment = _segment(root, train + val)
    js, md = write_model_card(ckpt, segment, volumes, {"epoch": 5.0, "global_step": 40.0})
    card = json.loads(js.read_text())
    assert js.parent == md.parent == ckpt.parent
    assert card["architecture"]["parameters"] == sum(p.numel() for p in net.parameters())
    assert card["training_data"]["splits"] == {
        "train": {"files": 3, "slices": 9},
        "val": {"files": 2, "slices": 4},
    }
    assert (card["budget"]["epochs"], card["budget"]["steps"]) == (5.0, 40.0)
    assert card["budget"]["wall_hours"] == 2.0 and card["budget"]["cpu_core_hours"] == 4.0
    ssim = card["validation"]["ssim"]
    assert ssim["mean"] == pytest.approx(0.85) and ssim["ci_low"] <= 0.85 <= ssim["ci_high"]
    assert ssim["n"] == 2 and card["masks"]["mask_type"] == "random"
    assert card["commit"] == {"commit": "abc123", "dirty": True}
    assert ("synthetic phantoms" in " ".join(card["limits"])) == synthetic
    text = md.read_text()
    for expected in ("| ssim | 0.85 |", "mri-recon-eval", "mri-recon-predict", "abc123", "7,"):
        assert expected in text
    # the manifest hash is the hash of what the run read: another file, another hash
    other = _segment(root, train)
    js2, _ = write_model_card(ckpt, other, volumes, {})
    assert (
        json.loads(js2.read_text())["training_data"]["manifest_sha256"]
        != card["training_data"]["manifest_sha256"]
    )


def test_model_card_names_the_data_format(tmp_path) -> None:
    """A run on another format's data: the card names the format (not "fastMRI-format"),
    its options, and its commands read the data as that format again."""
    from mri_recon.cli.data import main

    root = tmp_path / "data"
    assert main(["synth", "--out", str(root), "--format", "m4raw", "--preset", "tiny"]) == 0
    net = Unet(chans=4, num_pool_layers=2)
    ckpt = tmp_path / "run/checkpoints/best.ckpt"
    ckpt.parent.mkdir(parents=True)
    state = {NET_PREFIX + k: v for k, v in net.state_dict().items()}
    torch.save({"state_dict": state, CHECKPOINT_KEY: {"net_spec": SPEC, "name": "unet"}}, ckpt)
    segment = _segment(root, sorted(root.rglob("*.h5")))
    segment["config"]["data"] = {
        "challenge": "multicoil",
        "format": "m4raw",
        "format_options": {"target": "mean"},
    }
    js, md = write_model_card(ckpt, segment, [], {})
    card = json.loads(js.read_text())
    assert card["intended_use"].endswith("on M4Raw-format multicoil k-space")
    assert card["training_data"]["format"] == "m4raw"
    assert card["training_data"]["splits"]["train"]["files"] == 5
    for command in card["commands"].values():
        assert """data.format=m4raw 'data.format_options={target:"mean"}'""" in command
    assert "fastMRI" not in md.read_text()
