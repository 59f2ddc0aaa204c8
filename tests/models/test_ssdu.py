"""SSDU's loss and wrapper: the loss reads only the loss set; the network never sees the
loss set; the VarNet's data consistency takes point masks (column masks unchanged); an SSDU
checkpoint is the network's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mri_recon.contract import DataConsistent, LossTerms, Trainable, TrainingBatch
from mri_recon.models.losses import SSDULoss
from mri_recon.models.ssdu import SSDU
from mri_recon.models.unet import Unet
from mri_recon.models.varnet import VarNet
from mri_recon.physics.fft import fft2c
from mri_recon.physics.ssdu import SSDUSplit, split_seed

B, C, H, W, CROP = 2, 3, 32, 41, (24, 24)


def _data(coils: int = C) -> tuple[torch.Tensor, torch.Tensor]:
    """complex (B, C, H, W) smooth k-space and bool (B, W) 4x random column masks."""
    g = torch.Generator().manual_seed(0)
    y, x = torch.linspace(-1, 1, H)[:, None], torch.linspace(-1, 1, W)[None, :]
    image = ((x**2 + y**2 < 0.6) * (1 + 0.3 * torch.rand(B, coils, H, W, generator=g))).to(
        torch.complex64
    )
    columns = torch.zeros(B, W, dtype=torch.bool)
    columns[0, ::3], columns[1, 1::3] = True, True  # 3x, and a centre band of 5 columns
    columns[:, W // 2 - 2 : W // 2 + 3] = True
    return fft2c(image), columns


def _varnet(challenge: str = "multicoil") -> VarNet:
    torch.manual_seed(0)
    return VarNet(
        2,
        4,
        2,
        2,
        2,
        challenge=challenge,
        maps="refined" if challenge == "multicoil" else "learned",
    )


def test_the_loss_is_the_papers_normalised_l1_l2_on_the_loss_set_only():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(2, C, H, W, dtype=torch.complex64, generator=g)
    pred = torch.randn(2, C, H, W, dtype=torch.complex64, generator=g).requires_grad_()
    held = torch.rand(2, 1, H, W, generator=g) < 0.2
    image = torch.zeros(2, 4, 4)
    terms = LossTerms(image, image, torch.ones(2), None, pred, ref, held)
    loss = SSDULoss()(terms)
    expected = 0.0
    for i in range(2):  # per sample, then the mean
        pts = held[i].expand(C, H, W)
        d, y = (ref[i] - pred[i].detach())[pts].numpy(), ref[i][pts].numpy()
        expected += (np.linalg.norm(d) / np.linalg.norm(y) + np.abs(d).sum() / np.abs(y).sum()) / 2
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    grad = pred.grad.abs()
    outside = ~held.expand_as(grad)
    assert (grad[outside] == 0).all() and (grad[~outside] > 0).all()  # the loss set only
    with pytest.raises(ValueError, match="SSDULoss needs pred_kspace and ref_kspace"):
        SSDULoss()(LossTerms(image, image, torch.ones(2), None))


def test_the_varnet_takes_point_masks_and_column_masks_are_unchanged():
    net = _varnet().eval()
    kspace, columns = _data()
    masked = kspace * columns[:, None, None, :]
    assert isinstance(net, DataConsistent)
    with torch.no_grad():
        by_columns = net.kspace_estimate(masked, columns)
        as_points = net.kspace_estimate(masked, columns[:, None, :].expand(-1, H, -1))
        image = net(masked, columns, None, (H, W))
    torch.testing.assert_close(as_points, by_columns)
    from mri_recon.physics.crop import rss
    from mri_recon.physics.fft import ifft2c

    torch.testing.assert_close(rss(ifft2c(by_columns), dim=1), image)


@pytest.mark.parametrize("challenge", ["multicoil", "singlecoil"])
def test_the_network_never_sees_the_loss_set_and_the_loss_reads_only_it(challenge):
    """Perturbing the measurement on the loss set changes no prediction; the gradient of the
    loss with respect to the measured k-space is zero off the loss set and the DC set's
    influence comes only through the network."""
    net = SSDU(_varnet(challenge), rho=0.4).train()
    kspace, columns = _data(C if challenge == "multicoil" else 1)
    masked = (kspace * columns[:, None, None, :]).requires_grad_()
    seeds = torch.tensor([11, 12])
    target = torch.full((B, *CROP), float("nan"))  # no target anywhere
    batch = TrainingBatch(
        columns, target, torch.full((B,), float("nan")), masked, sample_seed=seeds
    )
    terms = net.loss_terms(batch)
    dc, held = SSDUSplit(0.4)(columns, H, [split_seed(int(s), 0) for s in seeds])
    assert torch.equal(terms.kspace_mask[:, 0], held)
    bumped = masked.detach() + 5.0 * held[:, None]  # only the loss set's measurements change
    again = net.loss_terms(
        TrainingBatch(columns, target, batch.max_value, bumped, sample_seed=seeds)
    )
    torch.testing.assert_close(again.pred_kspace, terms.pred_kspace)  # the net never saw them
    loss = SSDULoss()(terms)
    assert torch.isfinite(loss) and loss > 0
    (grad,) = torch.autograd.grad(loss, masked)
    off = ~(dc | held)[:, None].expand_as(grad)
    assert (grad[off] == 0).all()  # unacquired points play no part
    assert grad[held[:, None].expand_as(grad)].abs().sum() > 0  # the loss set is the reference


def test_multi_mask_steps_have_k_splits_per_slice():
    net = SSDU(_varnet(), rho=0.3, num_splits=3).train()
    kspace, columns = _data()
    batch = TrainingBatch(
        columns, torch.zeros(B, *CROP), torch.ones(B), kspace * columns[:, None, None, :],
        sample_seed=torch.tensor([5, 6]),
    )  # fmt: skip
    terms = net.loss_terms(batch)
    assert terms.pred_kspace.shape == (B * 3, C, H, W) and terms.pred.shape == (B, *CROP)
    held = terms.kspace_mask[:, 0]
    assert not torch.equal(held[0], held[1]) and not torch.equal(held[1], held[2])
    net.eval()  # validation: one fixed split per slice, and the full reconstruction
    with torch.no_grad():
        val = net.loss_terms(batch)
    assert val.pred_kspace.shape == (B, C, H, W) and val.recon.shape == (B, *CROP)


def test_the_wrapper_is_a_view_its_checkpoint_is_the_networks_and_it_refuses_a_unet():
    inner = _varnet()
    net = SSDU(inner)
    assert isinstance(net, Trainable) and net.name == "varnet"
    assert net.state_dict().keys() == inner.state_dict().keys()
    assert [p is q for p, q in zip(net.parameters(), inner.parameters(), strict=True)]
    net.eval()
    assert not inner.training
    with pytest.raises(ValueError, match="^net: Unet has no data consistency"):
        SSDU(Unet(1, 1, 4, 2))
    with pytest.raises(ValueError, match="^num_splits: must be an int >= 1"):
        SSDU(inner, num_splits=0)


@pytest.mark.parametrize("challenge", ["multicoil", "singlecoil"])
def test_modl_composes_with_ssdu(challenge):
    from mri_recon.models.modl import MoDL

    torch.manual_seed(0)
    modl = MoDL(num_unrolls=2, chans=4, num_layers=3, challenge=challenge, cg_iterations=3)
    net = SSDU(modl).train()
    assert isinstance(modl, DataConsistent)
    kspace, columns = _data(C if challenge == "multicoil" else 1)
    masked = kspace * columns[:, None, None, :]
    seeds = torch.tensor([1, 2])
    batch = TrainingBatch(columns, torch.zeros(B, *CROP), torch.ones(B), masked, sample_seed=seeds)
    terms = net.loss_terms(batch)
    held = terms.kspace_mask
    bumped = masked + 5.0 * held  # the network never sees the loss set
    again = net.loss_terms(
        TrainingBatch(columns, batch.target, batch.max_value, bumped, sample_seed=seeds)
    )
    torch.testing.assert_close(again.pred_kspace, terms.pred_kspace)
    loss = SSDULoss()(terms)
    loss.backward()
    assert torch.isfinite(loss) and modl.log_lam.grad is not None
