"""ImageReconstructor (normalisation round trip, the contract) and the training losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastmri.losses import SSIMLoss as FastmriSSIMLoss
from skimage.metrics import structural_similarity
from torch import nn

from mri_recon.baselines.zero_filled import ZeroFilled
from mri_recon.contract import LossTerms, Reconstructor, Trainable
from mri_recon.models.losses import L1Loss, SSIMLoss
from mri_recon.models.reconstructor import ImageReconstructor
from mri_recon.models.unet import Unet
from mri_recon.physics.fft import fft2c
from mri_recon.physics.masks import ColumnMaskFunc, apply_mask

CROP = (28, 24)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _smooth_kspace(batch: int, coils: int, height: int, width: int, seed: int) -> torch.Tensor:
    """complex64 (B, C, H, W): k-space of a smooth image with a bright square (no outliers)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(-1, 1, height)[:, None]
    x = torch.linspace(-1, 1, width)[None, :]
    square = ((y.abs() < 0.5) & (x.abs() < 0.5)).float()
    scale = torch.rand(batch, coils, 1, 1, generator=g) + 0.5
    image = (square + 0.3 + 0.1 * torch.cos(3 * x + 2 * y)) * scale * 1e-4  # fastMRI-like scale
    return fft2c(image.to(torch.complex64))


def _masked(batch: int = 3, coils: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    kspace = _smooth_kspace(batch, coils, 36, 30, seed=0)
    mask_func = ColumnMaskFunc("random", [0.2], [3])
    mask = torch.stack([mask_func(30, seed=i).mask for i in range(batch)])  # (B, W)
    return apply_mask(kspace, mask), mask


@pytest.mark.parametrize("coils", [1, 4])
def test_identity_network_returns_the_zero_filled_image(coils: int) -> None:
    masked_kspace, mask = _masked(coils=coils)
    zero_filled = ZeroFilled()(masked_kspace, mask, None, CROP)
    out = ImageReconstructor(Identity())(masked_kspace, mask, None, CROP)
    assert out.shape == (3, *CROP) and out.dtype == torch.float32
    torch.testing.assert_close(out, zero_filled, rtol=1e-5, atol=1e-12)
    # the same through a residual U-Net whose last 1x1 conv is zero (identity)
    unet = Unet(chans=4, num_pool_layers=2, residual=True)
    nn.init.zeros_(unet.up_conv[-1][-1].weight)
    nn.init.zeros_(unet.up_conv[-1][-1].bias)
    out = ImageReconstructor(unet)(masked_kspace, mask, None, CROP)
    torch.testing.assert_close(out, zero_filled, rtol=1e-5, atol=1e-12)


def test_normalize_statistics_and_round_trip() -> None:
    recon = ImageReconstructor(Identity())
    image = (
        torch.rand(4, 9, 13, dtype=torch.float64)
        * torch.tensor([1.0, 1e-4, 3.0, 1e3])[:, None, None]
    )
    x, mean, std = recon.normalize(image)
    assert x.shape == image.shape and mean.shape == std.shape == (4,)
    torch.testing.assert_close(mean, image.mean(dim=(1, 2)))
    torch.testing.assert_close(std, image.flatten(1).std(1) + 1e-11)  # unbiased, as fastMRI
    torch.testing.assert_close(
        x.flatten(1).mean(1), torch.zeros(4, dtype=x.dtype), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(recon.unnormalize(x, mean, std), image)
    torch.testing.assert_close(recon.normalize_like(image, mean, std), x)


def test_normalize_clamps_outliers_to_six() -> None:
    image = torch.zeros(1, 20, 20)
    image[0, 0, 0] = 1e3  # one pixel far above mean + 6 std
    x, _, _ = ImageReconstructor(Identity()).normalize(image)
    assert x.max() == 6.0 and x.min() > -6.0
    constant = torch.full((2, 5, 6), 3.0)
    x, mean, std = ImageReconstructor(Identity()).normalize(constant)
    assert torch.all(x == 0) and torch.all(mean == 3.0) and torch.all(std > 0)


def test_reconstructor_contract() -> None:
    recon = ImageReconstructor(Unet(chans=4, num_pool_layers=2), name="unet_small")
    assert isinstance(recon, Reconstructor) and isinstance(recon, Trainable)
    assert not isinstance(recon.net, Trainable)  # a plain network is wrapped, not trained as is
    assert recon.name == "unet_small" and recon.needs_sens_maps is False
    masked_kspace, mask = _masked()
    with torch.no_grad():
        out = recon(masked_kspace, mask, None, CROP)
    assert out.shape == (3, *CROP) and out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="mask must be"):
        recon(masked_kspace, mask[:, :-1], None, CROP)
    with pytest.raises(TypeError, match="masked_kspace must be complex"):
        recon(masked_kspace.abs(), mask, None, CROP)
    with pytest.raises(ValueError, match=r"crop_size \(40, 24\) must fit in \(H, W\) = \(36, 30\)"):
        recon(masked_kspace, mask, None, (40, 24))


def test_predict_normalized_checks_the_network_output() -> None:
    recon = ImageReconstructor(nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match=r"net output shape \(2, 2, 8, 8\)"):
        recon.predict_normalized(torch.randn(2, 8, 8))
    with pytest.raises(ValueError, match="clamp: must be a number in"):
        ImageReconstructor(Identity(), clamp=0)


# ----------------------------------------------------------------------------------- losses


def _terms(pred: torch.Tensor, ref: torch.Tensor, data_range: torch.Tensor) -> LossTerms:
    return LossTerms(pred, ref, data_range, None)


def _images(seed: int, shape: tuple[int, ...] = (3, 20, 17)) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(shape, generator=g, dtype=torch.float64)
    pred = target + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
    return pred, target


def test_ssim_loss_is_zero_for_identical_images() -> None:
    _, target = _images(0)
    loss = SSIMLoss().double()(_terms(target, target.clone(), torch.ones(3, dtype=torch.float64)))
    assert abs(float(loss)) < 1e-12


def test_ssim_loss_equals_one_minus_skimage_ssim() -> None:
    pred, target = _images(1, (1, 24, 19))
    data_range = torch.tensor([1.3], dtype=torch.float64)
    loss = SSIMLoss().double()(_terms(pred, target, data_range))
    reference = structural_similarity(target[0].numpy(), pred[0].numpy(), data_range=1.3)
    # fastmri builds its window 1/49 in float32: ~1e-8 off after .double()
    assert float(loss) == pytest.approx(1 - reference, rel=1e-6)


def test_ssim_loss_matches_fastmri_with_per_sample_range() -> None:
    pred, target = _images(2)
    pred, target = pred.float(), target.float()
    data_range = torch.tensor([1.0, 2.0, 0.5])
    ours = SSIMLoss()(_terms(pred, target, data_range))
    theirs = FastmriSSIMLoss()(pred[:, None], target[:, None], data_range)
    torch.testing.assert_close(ours, theirs)


def test_ssim_loss_has_gradients_and_no_state() -> None:
    pred, target = _images(3)
    pred.requires_grad_(True)
    SSIMLoss().double()(_terms(pred, target, torch.ones(3, dtype=torch.float64))).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert SSIMLoss().state_dict() == {}  # nothing extra in checkpoints


def test_l1_loss_and_shape_errors() -> None:
    pred, target = _images(4)
    ones = torch.ones(3)
    torch.testing.assert_close(L1Loss()(_terms(pred, target, ones)), (pred - target).abs().mean())
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        L1Loss()(_terms(pred, target[:, :-1], ones))
    with pytest.raises(ValueError, match=r"data_range \(B,\), got .* \(2,\)"):
        SSIMLoss()(_terms(pred, target, torch.ones(2)))
    for win_size in (4, 1, 3.0):
        with pytest.raises(ValueError, match="^win_size: must be an (odd )?int >= 3"):
            SSIMLoss(win_size=win_size)
    with pytest.raises(ValueError, match="^k2: must be a number in"):
        SSIMLoss(k2=0)
    with pytest.raises(ValueError, match="h, w >= 7"):
        SSIMLoss()(_terms(pred[:, :5], target[:, :5], ones))
    assert np.isfinite(float(SSIMLoss()(_terms(pred.float(), target.float(), ones))))
