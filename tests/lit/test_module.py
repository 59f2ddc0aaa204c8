"""ReconModule on hand-built batches, and the DDP-safe per-volume validation metrics."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from mri_recon.contract import CropWindows, TrainingBatch
from mri_recon.lit.callbacks import ValidationTable, comparison_row, log_image_rows
from mri_recon.lit.module import ReconModule
from mri_recon.metrics.image import volume_metrics
from mri_recon.models.losses import SSIMLoss
from mri_recon.models.unet import Unet
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed

H, W, CROP = 40, 36, (32, 28)


def make_samples(num_volumes: int = 3, num_slices: int = 4, seed: int = 0) -> list[dict]:
    """Slices in the DataModule's item format: smooth random k-space, per-file masks."""
    g = torch.Generator().manual_seed(seed)
    ky, kx = torch.linspace(-1, 1, H)[:, None], torch.linspace(-1, 1, W)[None, :]
    window = torch.exp(-(ky**2 + kx**2) / (2 * 0.2**2))  # low-pass: a smooth image
    mask_func = ColumnMaskFunc("random", [0.2], [3])
    samples = []
    for v in range(num_volumes):
        fname = f"file{v:03d}.h5"
        noise = torch.randn(num_slices, 1, H, W, 2, generator=g)
        kspace = (torch.view_as_complex(noise) * window * 1e-3).to(torch.complex64)
        target = rss(center_crop(ifft2c(kspace), CROP))  # (S, h, w) float32
        mask = mask_func(W, seed=file_seed(fname)).mask
        for s in range(num_slices):
            samples.append(
                {
                    "kspace": kspace[s],
                    "mask": mask,
                    "target": target[s],
                    "max_value": target.max(),
                    "fname": fname,
                    "slice_num": s,
                    "num_slices": num_slices,
                    "acquisition": "CORPD_FBK",
                }
            )
    return samples


def make_module(**kwargs: Any) -> ReconModule:
    torch.manual_seed(0)
    kwargs.setdefault("optimizer", partial(torch.optim.Adam, lr=1e-3))
    return ReconModule(Unet(chans=4, num_pool_layers=2), **kwargs)


def make_trainer(**kwargs: Any) -> pl.Trainer:
    defaults = {
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return pl.Trainer(**{**defaults, **kwargs})


def expected_metrics(module: ReconModule, samples: list[dict]) -> dict[str, dict[str, float]]:
    """Per-volume metrics the evaluation way: whole volumes through the reconstructor."""
    module.eval()
    by_volume: dict[str, list[dict]] = {}
    for s in samples:
        by_volume.setdefault(s["fname"], []).append(s)
    out = {}
    with torch.no_grad():
        for fname, slices in by_volume.items():
            mask = torch.stack([s["mask"] for s in slices])  # (S, W)
            kspace = apply_mask(torch.stack([s["kspace"] for s in slices]), mask)
            recon = module.reconstructor(kspace, mask, None, CROP)
            target = torch.stack([s["target"] for s in slices])
            out[fname] = volume_metrics(target.numpy(), recon.numpy())
    return out


# ------------------------------------------------------------------------------- training


def test_training_is_deterministic_given_the_seed() -> None:
    def run(seed: int) -> list[torch.Tensor]:
        module = make_module(train_crop_size=12, seed=seed)
        trainer = make_trainer(max_steps=2)
        trainer.fit(module, DataLoader(make_samples(), batch_size=4))
        assert trainer.global_step == 2
        assert torch.isfinite(trainer.callback_metrics["train/loss"])
        return [p.detach().clone() for p in module.parameters()]

    initial = [p.detach().clone() for p in make_module().parameters()]
    first, again = run(0), run(0)
    assert not all(torch.equal(a, b) for a, b in zip(initial, first, strict=True))  # it trained
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_crop_locations_depend_on_seed_and_batch_only() -> None:
    x = torch.arange(4 * 30 * 30, dtype=torch.float32).reshape(4, 30, 30)

    def crop(seed: int, batch: int = 0) -> torch.Tensor:
        generator = make_module(seed=seed)._crop_generator(batch)
        return CropWindows.random(tuple(x.shape), 8, generator).apply(x)

    assert torch.equal(crop(0), crop(0))  # not the global RNG: same seed, same windows
    assert not torch.equal(crop(0), crop(1))
    assert not torch.equal(crop(0), crop(0, batch=1))


def test_ssim_loss_trains() -> None:
    module = make_module(loss=SSIMLoss(), train_crop_size=16)
    trainer = make_trainer(max_steps=1)
    trainer.fit(module, DataLoader(make_samples(num_volumes=1), batch_size=2))
    loss = float(trainer.callback_metrics["train/loss"])
    assert 0 < loss < 2


def test_crop_windows_are_data_one_window_per_sample() -> None:
    x = torch.randn(5, 20, 17)
    crop = CropWindows.random((5, 20, 17), 8, torch.Generator().manual_seed(3))
    assert crop.size == (8, 8) and len(crop.corners) == 5
    assert all(0 <= t <= 12 and 0 <= s <= 9 for t, s in crop.corners)
    assert len(set(crop.corners)) > 1  # a window per sample, not one for the batch
    cx = crop.apply(x)
    assert cx.shape == (5, 8, 8)
    for i, (t, s) in enumerate(crop.corners):
        torch.testing.assert_close(cx[i], x[i, t : t + 8, s : s + 8])
    assert CropWindows.random((5, 20, 17), 8, torch.Generator().manual_seed(3)) == crop
    big = CropWindows.random((5, 20, 17), 100, torch.Generator().manual_seed(3))
    assert big.size == (20, 17) and torch.equal(big.apply(x), x)  # clipped to the image


# ----------------------------------------------------------------------------- validation


def test_validation_metrics_equal_the_evaluation_metrics(
    capsys: pytest.CaptureFixture[str],
) -> None:
    samples = make_samples(num_volumes=3, num_slices=4)
    module = make_module()
    trainer = make_trainer(callbacks=[ValidationTable()])
    # batches of 3 straddle volumes: per-volume gathering must still be exact
    trainer.validate(module, DataLoader(samples, batch_size=3), verbose=False)
    expected = expected_metrics(module, samples)
    table = {row["fname"]: row for row in module.last_val_table}
    assert sorted(table) == sorted(expected)
    for fname, metrics in expected.items():
        assert table[fname]["num_slices"] == 4
        assert table[fname]["ssim"] == pytest.approx(metrics["ssim"], rel=1e-5)
        assert table[fname]["psnr"] == pytest.approx(metrics["psnr"], rel=1e-5)
        assert table[fname]["nmse"] == pytest.approx(metrics["nmse"], rel=1e-4)
    for name in ("ssim", "psnr", "nmse"):
        mean = np.mean([m[name] for m in expected.values()])
        assert float(trainer.callback_metrics[f"val/{name}"]) == pytest.approx(mean, rel=1e-4)
    assert "val/loss" in trainer.callback_metrics
    out = capsys.readouterr().out  # the ValidationTable callback
    assert all(f"file00{v}.h5" in out for v in range(3)) and "mean (3 volumes)" in out


def test_validation_logs_fixed_images_to_tensorboard(tmp_path: Path) -> None:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    samples = make_samples(num_volumes=3, num_slices=2)
    tb = TensorBoardLogger(tmp_path, name="tb", version=0)
    trainer = make_trainer(
        logger=[tb, CSVLogger(tmp_path, name="csv")], max_epochs=2, limit_train_batches=1
    )
    module = make_module(num_log_images=2)
    trainer.fit(module, DataLoader(samples, batch_size=2), DataLoader(samples, batch_size=2))
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    assert sorted(tags) == ["val_images/file000.h5_slice000", "val_images/file001.h5_slice000"]
    for tag in tags:
        images = events.Images(tag)
        assert [im.step for im in images] == [1, 2]  # the same slices every epoch
        assert (images[0].width, images[0].height) == (4 * CROP[1], CROP[0])
    assert "val/ssim" in events.Tags()["scalars"] and "train/loss_epoch" in events.Tags()["scalars"]


def test_comparison_row_and_loggers_without_images() -> None:
    target = torch.rand(6, 5) + 1
    row = comparison_row(target, target / 2, target)
    assert row.shape == (1, 6, 20) and row.min() >= 0 and row.max() <= 1
    torch.testing.assert_close(row[0, :, :5], target / target.max())
    assert torch.all(row[0, :, 15:] == 0)  # no error

    class Plain:
        experiment = object()

    assert log_image_rows([Plain()], {"a": row}, 0) == 0


# ------------------------------------------------------------------- optimizers and errors


@pytest.mark.parametrize(
    ("optimizer", "scheduler"),
    [
        (
            partial(torch.optim.SGD, lr=0.1, momentum=0.9),
            partial(torch.optim.lr_scheduler.StepLR, step_size=2),
        ),
        (
            partial(torch.optim.SGD, lr=0.1),
            partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=5),
        ),
        (partial(torch.optim.RMSprop, lr=1e-3), None),
        (partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-4), None),
    ],
)
def test_configure_optimizers(optimizer: Any, scheduler: Any) -> None:
    module = make_module(optimizer=optimizer, scheduler=scheduler)
    config = module.configure_optimizers()
    if scheduler is None:
        assert isinstance(config, optimizer.func)
        return
    assert isinstance(config["optimizer"], optimizer.func)
    assert isinstance(config["lr_scheduler"]["scheduler"], scheduler.func)
    assert config["lr_scheduler"]["interval"] == "epoch"
    params = {id(p) for g in config["optimizer"].param_groups for p in g["params"]}
    assert params == {id(p) for p in module.reconstructor.net.parameters()}


def test_constructor_and_batch_errors() -> None:
    with pytest.raises(TypeError, match="optim"):
        make_module(optimizer=None)
    with pytest.raises(ValueError, match=r"^train_crop_size: must be an int >= 1 or null, got 0"):
        make_module(train_crop_size=0)
    with pytest.raises(TypeError, match="_target_"):
        make_module(net_spec={"chans": 4})
    with pytest.raises(ValueError, match="pass net_spec"):
        ReconModule(torch.nn.Sequential(torch.nn.Identity()), partial(torch.optim.Adam))
    with pytest.raises(TypeError, match="not an Optimizer"):
        make_module(optimizer=lambda params: list(params)).configure_optimizers()
    batch = DataLoader(make_samples(num_volumes=1), batch_size=2).__iter__().__next__()
    del batch["target"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['target'\]"):
        make_module().training_step(batch, 0)


# ------------------------------------------------------------------ precision and compile


def test_bf16_trains_and_validates_close_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16-mixed: the network under autocast, the physics, loss and metrics in float32;
    finite losses and per-volume metrics within a stated tolerance of the fp32 run."""
    import mri_recon.lit.module as module_py

    seen: list[tuple[str, bool, torch.dtype]] = []  # (where, autocast on, dtype)

    def spy_zero_filled(masked_kspace: torch.Tensor, mask, size) -> torch.Tensor:
        seen.append(("zero_filled", torch.is_autocast_enabled("cpu"), masked_kspace.dtype))
        return zero_filled(masked_kspace, mask, size)

    class SpyLoss(SSIMLoss):
        def forward(self, terms):  # type: ignore[override]
            seen.append(("loss", torch.is_autocast_enabled("cpu"), terms.pred.dtype))
            return super().forward(terms)

    from mri_recon.physics.zero_filled import zero_filled

    monkeypatch.setattr(module_py, "zero_filled", spy_zero_filled)
    samples = make_samples()
    metrics = {}
    for precision in ("32-true", "bf16-mixed"):
        module = make_module(loss=SpyLoss())
        trainer = make_trainer(max_epochs=2, precision=precision)
        loader = DataLoader(samples, batch_size=4)
        trainer.fit(module, loader, loader)
        assert torch.isfinite(trainer.callback_metrics["train/loss"])
        assert torch.isfinite(trainer.callback_metrics["val/loss"])
        metrics[precision] = dict(module.last_val_metrics)
    assert {(where, on, dtype) for where, on, dtype in seen} == {
        ("zero_filled", False, torch.complex64),
        ("loss", False, torch.float32),
    }
    fp32, bf16 = metrics["32-true"], metrics["bf16-mixed"]
    assert all(np.isfinite(v) for v in bf16.values())
    # bf16 has an 8-bit mantissa: after 6 steps the metrics agree to ~1e-2 (SSIM), 0.2 dB
    assert bf16["ssim"] == pytest.approx(fp32["ssim"], abs=0.02)
    assert bf16["psnr"] == pytest.approx(fp32["psnr"], abs=0.3)
    assert bf16["nmse"] == pytest.approx(fp32["nmse"], rel=0.05)
    assert bf16 != fp32  # the network did run in bf16


def _predict(reconstructor: Any, x: torch.Tensor) -> torch.Tensor:
    """The training prediction (``loss_terms``' pred) for the fully sampled k-space of real
    images x (B, h, w)."""
    b, _, w = x.shape
    kspace = fft2c(x.to(torch.complex64))[:, None]  # (B, 1, h, w)
    mask = torch.ones(b, w, dtype=torch.bool)
    batch = TrainingBatch(mask, x, x.amax(dim=(-2, -1)), masked_kspace=kspace)
    return reconstructor.loss_terms(batch).pred


def test_network_runs_in_bf16_under_autocast_and_returns_float32() -> None:
    def make(**kwargs: Any) -> ReconModule:  # no residual: the last conv's bf16 is the output
        torch.manual_seed(0)
        net = Unet(chans=4, num_pool_layers=2, residual=False)
        return ReconModule(net, partial(torch.optim.Adam, lr=1e-3), **kwargs)

    module = make(channels_last=True)
    x = torch.randn(2, 16, 20)
    conv = next(m for m in module.reconstructor.net.modules() if isinstance(m, torch.nn.Conv2d))
    outputs: list[torch.Tensor] = []
    conv.register_forward_hook(lambda _m, _i, out: outputs.append(out))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = _predict(module.reconstructor, x)
    assert outputs[0].dtype == torch.bfloat16 and pred.dtype == torch.float32
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert outputs[0].is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert module.reconstructor.net(x.unsqueeze(1)).dtype == torch.bfloat16
    eager = make()
    with torch.no_grad():
        assert torch.allclose(
            _predict(module.reconstructor, x), _predict(eager.reconstructor, x), atol=1e-5
        )


def test_compiled_network_matches_eager_and_its_checkpoint_loads_eagerly(
    tmp_path: Path,
) -> None:
    """torch.compile (in place) gives the eager output on one batch; the state-dict keys are
    the eager network's, so a checkpoint rebuilds an eager reconstructor on its own."""
    from mri_recon.lit.checkpoint import load_reconstructor

    def tiny(**kwargs: Any) -> ReconModule:
        torch.manual_seed(0)
        net = Unet(chans=2, num_pool_layers=1)
        return ReconModule(net, partial(torch.optim.Adam, lr=1e-3), **kwargs)

    compiled, eager = tiny(compile="default").eval(), tiny().eval()
    assert compiled.reconstructor.net._compiled_call_impl is not None
    assert list(compiled.state_dict()) == list(eager.state_dict())
    x = torch.randn(2, 12, 10)
    with torch.no_grad():
        out, expected = _predict(compiled.reconstructor, x), _predict(eager.reconstructor, x)
    assert torch.allclose(out, expected, atol=1e-5)
    ckpt: dict[str, Any] = {"state_dict": compiled.state_dict()}
    compiled.on_save_checkpoint(ckpt)
    torch.save(ckpt, tmp_path / "best.ckpt")
    loaded = load_reconstructor(tmp_path / "best.ckpt")
    with torch.no_grad():
        assert torch.allclose(_predict(loaded, x), expected, atol=1e-6)


@pytest.mark.slow
def test_max_autotune_compile_matches_eager() -> None:
    torch.manual_seed(0)
    net = Unet(chans=2, num_pool_layers=1)
    module = ReconModule(net, partial(torch.optim.Adam, lr=1e-3), compile="max-autotune")
    x = torch.randn(2, 12, 10)
    with torch.no_grad():
        expected = module.reconstructor.net.forward(x.unsqueeze(1))[:, 0]  # eager
        assert torch.allclose(_predict(module.eval().reconstructor, x), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"compile": "fast"}, "compile"),
        ({"compile": True}, "compile"),
        ({"channels_last": "yes"}, "channels_last"),
        ({"num_log_images": -1}, "num_log_images"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: must be"):
        make_module(**kwargs)


def test_a_worker_formed_image_replaces_the_kspace() -> None:
    """data.transform=worker batches carry ``image`` (the zero-filled input) for ``kspace``:
    the same loss; a batch with neither is refused naming ``kspace``."""
    module = make_module()
    batch = DataLoader(make_samples(num_volumes=1), batch_size=2).__iter__().__next__()
    image = rss(center_crop(ifft2c(apply_mask(batch["kspace"], batch["mask"])), CROP))
    worker = {k: v for k, v in batch.items() if k != "kspace"} | {"image": image}
    torch.testing.assert_close(module.training_step(worker, 0), module.training_step(batch, 0))
    del worker["image"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['kspace'\]"):
        module.training_step(worker, 0)


@pytest.mark.parametrize("stage", ["fit", "validate"])
def test_a_non_finite_loss_or_recon_stops_naming_file_and_slice(tmp_path: Path, stage) -> None:
    """Issue 21 item 1: a NaN in the data that slipped past the prescan stops training or
    validation before any checkpoint, naming the file and the slice."""
    samples = make_samples(num_volumes=2, num_slices=2)
    samples[3]["kspace"] = samples[3]["kspace"].clone()
    samples[3]["kspace"][0, 5, W // 2] = complex("nan")  # file001 slice 1, in the ACS
    module = make_module()
    trainer = make_trainer(max_epochs=1, default_root_dir=tmp_path)
    loader = DataLoader(samples, batch_size=2)
    with pytest.raises(
        ValueError,
        match=r"^file001\.h5 slice 1: .*not finite|^file001\.h5 slice 1: the training loss is nan",
    ):
        if stage == "fit":
            trainer.fit(module, loader)
        else:
            trainer.validate(module, loader, verbose=False)
    assert not list(tmp_path.rglob("*.ckpt"))
