"""Self-contained checkpoints: load_reconstructor rebuilds the trained network; resume."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import fastmri.models
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from mri_recon.lit.checkpoint import build_from_spec, load_reconstructor, net_spec_of, to_plain
from mri_recon.lit.module import ReconModule
from mri_recon.models.reconstructor import ImageReconstructor
from mri_recon.models.unet import Unet
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask

H, W, CROP = 36, 34, (30, 26)


def make_samples(num_slices: int = 6) -> list[dict[str, Any]]:
    """One volume of smooth random slices in the DataModule's item format."""
    g = torch.Generator().manual_seed(0)
    ky, kx = torch.linspace(-1, 1, H)[:, None], torch.linspace(-1, 1, W)[None, :]
    window = torch.exp(-(ky**2 + kx**2) / (2 * 0.2**2))
    kspace = torch.view_as_complex(torch.randn(num_slices, 1, H, W, 2, generator=g)) * window
    kspace = kspace.to(torch.complex64)
    target = rss(center_crop(ifft2c(kspace), CROP))  # (S, h, w)
    mask_func = ColumnMaskFunc("random", [0.2], [3])
    return [
        {
            "kspace": kspace[s],
            "mask": mask_func(W, seed=s).mask,  # a random mask per slice, as in training
            "target": target[s],
            "max_value": target.max(),
            "fname": "vol.h5",
            "slice_num": s,
            "num_slices": num_slices,
            "acquisition": "AXT2",
        }
        for s in range(num_slices)
    ]


def make_module(init_seed: int = 0, **kwargs: Any) -> ReconModule:
    torch.manual_seed(init_seed)
    net = Unet(chans=4, num_pool_layers=2, norm=kwargs.pop("norm", "batch"))
    return ReconModule(net, partial(torch.optim.Adam, lr=1e-2), train_crop_size=16, **kwargs)


def make_trainer(tmp_path: Path, **kwargs: Any) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        **kwargs,
    )


def reconstruct(recon: ImageReconstructor, samples: list[dict[str, Any]]) -> torch.Tensor:
    mask = torch.stack([s["mask"] for s in samples])
    kspace = apply_mask(torch.stack([s["kspace"] for s in samples]), mask)
    with torch.no_grad():
        return recon(kspace, mask, None, CROP)


def test_round_trip_best_and_last(tmp_path: Path) -> None:
    samples = make_samples()
    checkpoints = ModelCheckpoint(
        dirpath=tmp_path / "checkpoints", filename="best", monitor="val/ssim", mode="max",
        save_last=True,
    )  # fmt: skip
    module = make_module()  # batch norm: running statistics must travel too
    trainer = make_trainer(tmp_path, callbacks=[checkpoints], max_epochs=2)
    trainer.fit(module, DataLoader(samples, batch_size=3), DataLoader(samples, batch_size=3))
    best, last = tmp_path / "checkpoints" / "best.ckpt", tmp_path / "checkpoints" / "last.ckpt"
    assert best.is_file() and last.is_file()
    assert checkpoints.best_model_score is not None  # val/ssim was monitored

    loaded = load_reconstructor(last)
    assert isinstance(loaded.net, Unet) and not loaded.training and loaded.name == "unet"
    assert (loaded.net.chans, loaded.net.num_pool_layers, loaded.net.norm) == (4, 2, "batch")
    module.eval()
    assert torch.equal(reconstruct(loaded, samples), reconstruct(module.reconstructor, samples))
    assert torch.equal(loaded.net.down_sample_layers[0].layers[1].running_mean,
                       module.reconstructor.net.down_sample_layers[0].layers[1].running_mean)  # fmt: skip
    assert isinstance(load_reconstructor(best), ImageReconstructor)
    spec = torch.load(last, weights_only=False)["hyper_parameters"]["net_spec"]
    assert spec == {"_target_": "mri_recon.models.unet.Unet", "in_chans": 1, "out_chans": 1,
                    "chans": 4, "num_pool_layers": 2, "drop_prob": 0.0, "norm": "batch",
                    "residual": True, "norm_groups": None}  # fmt: skip


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    loader = DataLoader(make_samples(), batch_size=3)  # 2 steps per epoch
    straight = make_module()
    make_trainer(tmp_path / "a", max_epochs=2, enable_checkpointing=False).fit(straight, loader)

    last = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    make_trainer(tmp_path / "b", max_epochs=1, callbacks=[last]).fit(make_module(), loader)
    resumed = make_module(init_seed=1)  # different init: the checkpoint must restore it all
    trainer = make_trainer(tmp_path / "c", max_epochs=2, enable_checkpointing=False)
    trainer.fit(resumed, loader, ckpt_path=tmp_path / "checkpoints" / "last.ckpt")
    assert trainer.global_step == 4
    # same weights, batch-norm statistics and crop locations (seeded by the global step)
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_explicit_net_spec_from_a_config_mapping(tmp_path: Path) -> None:
    spec = MappingProxyType(  # any Mapping (e.g. an OmegaConf DictConfig) is stored as a dict
        {"_target_": "mri_recon.models.unet.Unet", "chans": 4, "num_pool_layers": 2,
         "norm": "layer", "residual": False}
    )  # fmt: skip
    torch.manual_seed(0)
    module = ReconModule(Unet(**{k: v for k, v in spec.items() if k != "_target_"}),
                         partial(torch.optim.Adam, lr=1e-3), net_spec=spec)  # fmt: skip
    assert type(module.hparams.net_spec) is dict
    trainer = make_trainer(tmp_path, max_steps=1, enable_checkpointing=False)
    trainer.fit(module, DataLoader(make_samples(2), batch_size=2))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_reconstructor(path)
    assert loaded.net.norm == "layer" and loaded.net.residual is False
    module.eval()
    samples = make_samples(2)
    assert torch.equal(reconstruct(loaded, samples), reconstruct(module.reconstructor, samples))


def test_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_reconstructor(tmp_path / "missing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.ckpt: not a torch checkpoint"):
        load_reconstructor(text)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, other)
    with pytest.raises(ValueError, match=r"other\.ckpt: not a mri_recon checkpoint"):
        load_reconstructor(other)
    wrong = tmp_path / "wrong.ckpt"
    net = Unet(chans=4, num_pool_layers=2)
    state = {f"reconstructor.net.{k}": v for k, v in net.state_dict().items()}
    spec = {**net_spec_of(net), "chans": 8}
    torch.save({"state_dict": state, "mri_recon": {"net_spec": spec}}, wrong)
    with pytest.raises(ValueError, match=r"wrong\.ckpt: weights do not match net_spec"):
        load_reconstructor(wrong)


def test_build_from_spec_and_infer_spec() -> None:
    net = fastmri.models.Unet(1, 1, chans=4, num_pool_layers=2)  # stores its arguments too
    rebuilt = build_from_spec(net_spec_of(net))
    assert type(rebuilt) is type(net)
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in net.parameters()]
    for target in (None, "Unet", "mri_recon.models.unet.NoSuchNet", "collections.OrderedDict"):
        spec = {"chans": 4} if target is None else {"_target_": target}
        with pytest.raises(ValueError, match=rf"'_target_' naming an nn.Module .* {target!r}"):
            build_from_spec(spec)
    assert to_plain(MappingProxyType({"a": (1, 2), "b": {"c": "x"}})) == {
        "a": [1, 2],
        "b": {"c": "x"},
    }
