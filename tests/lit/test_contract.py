"""The training contract: a third kind of model, defined only here, trains and validates
through the unchanged ReconModule; a k-space term of its LossTerms reaches the loss."""

from __future__ import annotations

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from mri_recon.contract import LossTerms, Reconstructor, Trainable, TrainingBatch, check_inputs
from mri_recon.lit.module import ReconModule
from mri_recon.physics.crop import center_crop, rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, file_seed
from mri_recon.physics.operators import SenseOperator

H, W, CROP = 24, 21, (16, 15)  # non-square, odd width


def _cg(normal, b: torch.Tensor, x: torch.Tensor, iters: int) -> torch.Tensor:
    """Conjugate gradients on normal(x) = b per slice: complex (B, H, W)."""
    r = b - normal(x)
    p, rs = r, (r.abs() ** 2).sum(dim=(-2, -1))  # (B,)
    for _ in range(iters):
        ap = normal(p)
        alpha = rs / (p.conj() * ap).real.sum(dim=(-2, -1)).clamp_min(1e-30)
        x, r = x + alpha[:, None, None] * p, r - alpha[:, None, None] * ap
        rs_new = (r.abs() ** 2).sum(dim=(-2, -1))
        p, rs = r + (rs_new / rs.clamp_min(1e-30))[:, None, None] * p, rs_new
    return x


class UnrolledCG(nn.Module):
    """A toy MoDL-like network (single-coil): ``steps`` times a residual CNN denoiser z = D(x),
    then conjugate-gradient data consistency x = argmin ||A x - y||^2 + lam ||x - z||^2.

    With ``holdout`` it trains self-supervised as SSDU does: every other sampled column is
    hidden from the network, and the k-space terms compare its prediction there with the
    measurement (the points the network never saw).
    """

    name = "unrolled_cg"
    needs_sens_maps = False
    needs_kspace = True

    def __init__(self, steps: int = 2, cg_iters: int = 4, holdout: bool = False) -> None:
        super().__init__()
        self.steps, self.cg_iters, self.holdout = steps, cg_iters, holdout
        self.denoiser = nn.Conv2d(2, 2, 3, padding=1)
        nn.init.zeros_(self.denoiser.bias)  # start near the identity (the zero-filled image)
        nn.init.normal_(self.denoiser.weight, std=0.05)
        self.log_lam = nn.Parameter(torch.zeros(()))

    def image(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """complex (B, 1, H, W), bool (B, W) -> complex (B, H, W)."""
        op = SenseOperator.single_coil(mask, masked_kspace.shape[-2:])
        lam = self.log_lam.exp()
        rhs = op.A_adjoint(masked_kspace)  # (B, H, W)
        x = rhs
        scale = rhs.abs().amax(dim=(-2, -1))[:, None, None, None]  # the denoiser sees ~1
        for _ in range(self.steps):
            channels = torch.view_as_real(x).permute(0, 3, 1, 2) / scale  # (B, 2, H, W)
            noise = self.denoiser(channels) * scale
            z = x - torch.view_as_complex(noise.permute(0, 2, 3, 1).contiguous())
            x = _cg(lambda v, op=op: op.normal(v) + lam * v, rhs + lam * z, x, self.cg_iters)
        return x

    def forward(self, masked_kspace, mask, sens_maps, crop_size) -> torch.Tensor:
        check_inputs(masked_kspace, mask, None, crop_size)
        return center_crop(self.image(masked_kspace, mask).abs(), crop_size)

    def loss_terms(self, batch: TrainingBatch) -> LossTerms:
        mask, kspace = batch.mask, batch.masked_kspace
        held = torch.zeros_like(mask)
        if self.holdout:  # every other sampled column of each slice
            for i in range(mask.shape[0]):
                held[i, mask[i].nonzero().squeeze(-1)[1::2]] = True
        x = self.image(apply_mask(kspace, mask & ~held), mask & ~held)  # (B, H, W)
        recon = center_crop(x.abs(), batch.target.shape[-2:])  # (B, h, w)
        pred, ref = recon, batch.target
        if batch.crop is not None:
            pred, ref = batch.crop.apply(recon), batch.crop.apply(batch.target)
        return LossTerms(
            pred,
            ref,
            batch.max_value,
            recon if batch.crop is None else None,
            pred_kspace=fft2c(x)[:, None],  # (B, 1, H, W)
            ref_kspace=kspace,
            kspace_mask=held[:, None, None, :],
        )


class HeldOutKspaceL1(nn.Module):
    """Mean |predicted - measured| k-space over the points ``kspace_mask`` allows, relative to
    the measured magnitude there (SSDU's normalised L1)."""

    def forward(self, terms: LossTerms) -> torch.Tensor:
        points = terms.kspace_mask.expand_as(terms.ref_kspace)
        diff = (terms.pred_kspace - terms.ref_kspace)[points]
        return diff.abs().sum() / terms.ref_kspace[points].abs().sum()


def _samples(num_volumes: int = 3, num_slices: int = 4) -> list[dict]:
    """Single-coil slices of smooth images with a bright block, in the DataModule's format."""
    g = torch.Generator().manual_seed(0)
    y, x = torch.linspace(-1, 1, H)[:, None], torch.linspace(-1, 1, W)[None, :]
    mask_func = ColumnMaskFunc("random", [0.2], [2])
    samples = []
    for v in range(num_volumes):
        fname = f"vol{v}.h5"
        shift = torch.rand(num_slices, 2, 1, 1, generator=g) - 0.5
        block = ((y - shift[:, 0]).abs() < 0.4) & ((x - shift[:, 1]).abs() < 0.3)  # (S, H, W)
        image = (block.float() + 0.2 * torch.cos(2 * x + y)) * 1e-3
        kspace = fft2c(image.to(torch.complex64))[:, None]  # (S, 1, H, W)
        target = rss(center_crop(ifft2c(kspace), CROP))  # (S, h, w)
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
                }
            )
    return samples


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kwargs,
    )


def test_a_trainable_defined_here_trains_and_validates_through_the_module() -> None:
    torch.manual_seed(0)
    net = UnrolledCG()
    assert isinstance(net, Trainable) and isinstance(net, Reconstructor)
    module = ReconModule(net, partial(torch.optim.Adam, lr=3e-2), train_crop_size=12)
    assert module.reconstructor is net  # trained as it is, not wrapped as an image network
    samples = _samples()
    loader = DataLoader(samples, batch_size=4)
    before = _trainer().validate(module, loader, verbose=False)[0]
    _trainer(max_epochs=8).fit(module, DataLoader(samples, batch_size=4, shuffle=False), loader)
    after = module.last_val_metrics
    assert set(after) >= {"ssim", "psnr", "nmse"} and len(module.last_val_table) == 3
    assert module.trainer.callback_metrics["val/loss"] < 0.8 * before["val/loss"]
    assert after["ssim"] > before["val/ssim"] + 0.03 and after["psnr"] > before["val/psnr"] + 2
    # the metrics are those of the trainable as a reconstructor (what the evaluation runs)
    with torch.no_grad():
        batch = samples[:4]
        mask = torch.stack([s["mask"] for s in batch])
        masked = apply_mask(torch.stack([s["kspace"] for s in batch]), mask)
        terms = net.loss_terms(
            TrainingBatch(
                mask,
                torch.stack([s["target"] for s in batch]),
                torch.stack([s["max_value"] for s in batch]),
                masked_kspace=masked,
            )
        )
        torch.testing.assert_close(terms.recon, net(masked, mask, None, CROP))


def test_a_kspace_term_reaches_the_loss_and_trains() -> None:
    """SSDU-like: the loss reads only the k-space terms (the held-out points); the module
    passes it the trainable's LossTerms unchanged, and training lowers it."""
    torch.manual_seed(0)
    net = UnrolledCG(holdout=True)
    module = ReconModule(net, partial(torch.optim.Adam, lr=3e-2), loss=HeldOutKspaceL1())
    batch = next(iter(DataLoader(_samples(num_volumes=1), batch_size=4)))
    masked = apply_mask(batch["kspace"], batch["mask"])
    inputs = TrainingBatch(batch["mask"], batch["target"], batch["max_value"], masked)
    with torch.no_grad():
        terms = net.loss_terms(inputs)
        expected = HeldOutKspaceL1()(terms)
        got = module.training_step(batch, 0)
    held = terms.kspace_mask[:, 0, 0, :]
    assert held.any() and not (held & ~batch["mask"]).any()  # measured points only
    torch.testing.assert_close(got, expected)
    assert got > 0.05  # the network never saw those points
    _trainer(max_epochs=30).fit(module, DataLoader(_samples(num_volumes=1), batch_size=4))
    with torch.no_grad():
        assert HeldOutKspaceL1()(net.loss_terms(inputs)) < 0.8 * got


def test_a_kspace_trainable_refuses_worker_images() -> None:
    module = ReconModule(UnrolledCG(), partial(torch.optim.Adam, lr=1e-3))
    batch = next(iter(DataLoader(_samples(num_volumes=1), batch_size=2)))
    batch["image"] = batch.pop("kspace").abs()[:, 0, 4:-4, 3:-3]  # as data.transform=worker
    with pytest.raises(ValueError, match=r"missing key\(s\) \['kspace'\] \(unrolled_cg trains"):
        module.training_step(batch, 0)
