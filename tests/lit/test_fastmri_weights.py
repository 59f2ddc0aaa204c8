"""fastMRI's released weights: fastMRI's own networks with random weights, saved as the release
files are laid out, converted, and evaluated here; fastMRI's own inference path is the oracle
(``UnetDataTransform`` normalisation and un-normalisation; ``VarNetDataTransform`` and the
VarNet forward with ``num_low_frequencies``), on tiny files with an odd width."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from fastmri.data import SliceDataset
from fastmri.data.subsample import RandomMaskFunc
from fastmri.data.transforms import UnetDataTransform, VarNetDataTransform
from fastmri.models import Unet as FastMRIUnet
from fastmri.models import VarNet as FastMRIVarNet

from mri_recon.evaluation import EvalSettings, run_evaluation
from mri_recon.lit.checkpoint import load_reconstructor
from mri_recon.lit.fastmri_weights import convert
from mri_recon.physics.masks import ColumnMaskFunc

WIDTHS = (36, 41)


def _data(root: Path, split_writer, challenge: str, split: str = "val") -> Path:
    """Files with zero-padded columns outside [3, W - 3) (test files: stored masks that
    sample some padded columns, which fastMRI's VarNetDataTransform unmarks)."""
    split_writer(
        root, challenge=challenge, split=split, widths=WIDTHS, num_coils=3, height=48,
        padding_left=3,
    )  # fmt: skip
    return root / f"{challenge}_{split}"


def _ours(
    root: Path, run_dir: Path, challenge: str, ckpt: Path, split: str = "val"
) -> dict[str, np.ndarray]:
    settings = EvalSettings(
        root=root,
        challenge=challenge,
        split=split,
        mask_name="random_4x",
        mask_func=ColumnMaskFunc("random", [0.08], [4]),
        run_dir=run_dir,
        progress=False,
        num_resamples=20,
        num_figures=0,
    )
    method = load_reconstructor(ckpt)
    assert method.challenge == challenge
    run_evaluation(settings, {"imported": method})
    out = {}
    for path in sorted((run_dir / "reconstructions/imported").glob("*.h5")):
        with h5py.File(path) as hf:
            out[path.name] = hf["reconstruction"][()]
    return out


def _theirs(folder: Path, challenge: str, transform, run, tmp_path: Path) -> dict:
    dataset = SliceDataset(
        folder, challenge, transform, dataset_cache_file=tmp_path / "fastmri_cache.pkl"
    )
    out: dict[str, list] = {}
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            out.setdefault(sample.fname, []).append(run(sample).numpy())
    return {fname: np.stack(slices) for fname, slices in out.items()}


def _close(ours: dict, theirs: dict) -> None:
    assert sorted(ours) == sorted(theirs) == [f"file{1000001 + i}.h5" for i in range(2)]
    for fname, ref in theirs.items():
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(ours[fname], ref, rtol=0, atol=2e-5 * scale, err_msg=fname)


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_fastmri_unet_converts_and_matches_fastmris_inference(
    tmp_path, fastmri_split, challenge
) -> None:
    torch.manual_seed(0)
    net = FastMRIUnet(in_chans=1, out_chans=1, chans=8, num_pool_layers=3).eval()
    torch.save(net.state_dict(), tmp_path / "unet_state_dict.pt")  # as the release files
    ckpt = convert("fastmri-unet", tmp_path / "unet_state_dict.pt", tmp_path / "u.ckpt", challenge)
    folder = _data(tmp_path / "data", fastmri_split, challenge)
    ours = _ours(tmp_path / "data", tmp_path / "run", challenge, ckpt)
    mask_func = RandomMaskFunc([0.08], [4])
    transform = UnetDataTransform(challenge, mask_func=mask_func, use_seed=True)

    def run(sample):  # fastMRI's run_pretrained_unet_inference.py, one slice
        output = net(sample.image[None, None]).squeeze(1)[0]
        return output * sample.std + sample.mean

    _close(ours, _theirs(folder, challenge, transform, run, tmp_path))


@pytest.mark.parametrize(
    ("challenge", "split"), [("singlecoil", "val"), ("multicoil", "val"), ("multicoil", "test")]
)
def test_fastmri_varnet_converts_and_matches_fastmris_forward(
    tmp_path, fastmri_split, challenge, split
) -> None:
    torch.manual_seed(1)
    net = FastMRIVarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=6, pools=2).eval()
    torch.save(net.state_dict(), tmp_path / "varnet_state_dict.pt")
    ckpt = convert(
        "fastmri-varnet", tmp_path / "varnet_state_dict.pt", tmp_path / "v.ckpt", challenge
    )
    folder = _data(tmp_path / "data", fastmri_split, challenge, split)
    ours = _ours(tmp_path / "data", tmp_path / "run", challenge, ckpt, split)
    mask_func = RandomMaskFunc([0.08], [4]) if split == "val" else None  # test: the stored
    transform = VarNetDataTransform(mask_func=mask_func, use_seed=True)
    if split == "test":
        with h5py.File(folder / "file1000001.h5") as hf:
            assert hf["mask"][:3].any() or hf["mask"][-3:].any()  # a padded column marked

    def run(sample):  # fastMRI's VarNet forward with the mask function's num_low_frequencies
        kspace, mask = sample.masked_kspace, sample.mask
        if challenge == "singlecoil":  # (H, W, 2) -> a coil axis of one
            kspace, mask = kspace[None], mask[None]
        out = net(kspace[None], mask[None], sample.num_low_frequencies)[0]
        h, w = sample.crop_size
        top, left = (out.shape[-2] - h) // 2, (out.shape[-1] - w) // 2
        return out[top : top + h, left : left + w]

    _close(ours, _theirs(folder, challenge, transform, run, tmp_path))


def test_sizes_come_from_the_tensors_and_wrong_files_are_one_line(tmp_path) -> None:
    torch.manual_seed(0)
    net = FastMRIUnet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2)
    torch.save(
        {"state_dict": {f"unet.{k}": v for k, v in net.state_dict().items()}}, tmp_path / "a.ckpt"
    )
    spec = torch.load(convert("fastmri-unet", tmp_path / "a.ckpt", tmp_path / "b.ckpt"))[
        "mri_recon"
    ]
    assert (spec["net_spec"]["chans"], spec["net_spec"]["num_pool_layers"]) == (4, 2)
    assert spec["challenge"] == "multicoil"
    torch.save(net.state_dict(), tmp_path / "u.pt")
    with pytest.raises(ValueError, match=r"u\.pt: not fastmri-varnet weights \(.*\)$"):
        convert("fastmri-varnet", tmp_path / "u.pt", tmp_path / "c.ckpt")
    (tmp_path / "junk.pt").write_bytes(b"not a state dict")
    with pytest.raises(ValueError, match=r"junk\.pt: not a torch state dict"):
        convert("fastmri-unet", tmp_path / "junk.pt", tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match=r"^challenge: must be one of singlecoil, multicoil"):
        convert("fastmri-unet", tmp_path / "u.pt", tmp_path / "c.ckpt", "knee")
    assert not (tmp_path / "c.ckpt").exists()


def test_a_missing_convolution_is_not_taken_for_a_norm(tmp_path) -> None:
    state = FastMRIUnet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).state_dict()
    del state["down_sample_layers.1.layers.4.weight"]
    torch.save(state, tmp_path / "u.pt")
    with pytest.raises(ValueError, match=r"lacks down_sample_layers\.1\.layers\.4\.weight\)$"):
        convert("fastmri-unet", tmp_path / "u.pt", tmp_path / "c.ckpt")
    state = FastMRIUnet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).state_dict()
    state["conv.layers.0.weight"] = state["conv.layers.0.weight"][:, :3]
    torch.save(state, tmp_path / "u.pt")
    with pytest.raises(ValueError, match=r"conv\.layers\.0\.weight is misshapen\)$"):
        convert("fastmri-unet", tmp_path / "u.pt", tmp_path / "c.ckpt")
