"""E2E VarNet: fastMRI parity, the reconstructor contract, single-coil, checkpointing."""

from __future__ import annotations

import pytest
import torch
from fastmri.models import VarNet as FastMRIVarNet

from mri_recon.models.varnet import VarNet
from mri_recon.physics.crop import rss
from mri_recon.physics.fft import fft2c, ifft2c
from mri_recon.physics.masks import center_band

SIZES = {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 4, "sens_pools": 2}


def from_fastmri(state: dict) -> dict:
    """The documented key mapping: fastMRI's VarNet state dict -> ours."""
    return {k.replace("sens_net.norm_unet.unet.", "sens_net.unet."): v for k, v in state.items()}


def _batch(width: int = 367, coils: int = 3, height: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    kspace = torch.randn((2, coils, height, width), dtype=torch.complex64, generator=g)
    # fastMRI's layout: num_low = round(0.08 W) centre columns from (W - num_low + 1) // 2,
    # every 4th column elsewhere (offset 1 keeps the band's neighbours unsampled)
    num_low = round(0.08 * width)
    mask = torch.zeros((2, width), dtype=torch.bool)
    mask[:, 1::4] = True
    start = (width - num_low + 1) // 2
    mask[:, start : start + num_low] = True
    return kspace * mask[:, None, None, :], mask, num_low


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    theirs = FastMRIVarNet(**SIZES).eval()
    ours = VarNet(**SIZES, norm="instance").eval()
    missing, unexpected = ours.load_state_dict(from_fastmri(theirs.state_dict()), strict=False)
    # fastMRI's InstanceNorm has no affine; ours is at its initial value (1, 0)
    assert not unexpected
    assert missing and all(".layers." in k and k.endswith((".weight", ".bias")) for k in missing)
    return theirs, ours


def test_fastmri_parity_odd_width():
    theirs, ours = _pair()
    masked, mask, num_low = _batch(width=367)
    assert num_low == 29 and center_band(mask[0]) == (169, 198)  # 29 ACS columns at W = 367
    fm_mask = mask[:, None, None, :, None]  # (B, 1, 1, W, 1)
    with torch.no_grad():
        ref = theirs(torch.view_as_real(masked), fm_mask, num_low)  # (B, H, W)
        out = ours(masked, mask, None, tuple(ref.shape[-2:]), num_low_frequencies=num_low)
        default = ours(masked, mask, None, tuple(ref.shape[-2:]))  # center_band: same band
        derived = theirs(torch.view_as_real(masked), fm_mask)  # fastMRI's 2 min(l, r) = 28
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    torch.testing.assert_close(default, out)
    assert not torch.allclose(derived, ref, rtol=1e-3)  # the 28-column band differs


def test_contract_crop_and_single_coil():
    masked, mask, _ = _batch(width=37, coils=3, height=40)
    net = VarNet(**SIZES)
    out = net(masked, mask, None, (16, 20))
    assert out.shape == (2, 16, 20) and out.dtype == torch.float32
    single = VarNet(**SIZES, challenge="singlecoil")
    assert single.sens_net is None
    assert single(masked[:, :1], mask, None, (16, 20)).shape == (2, 16, 20)
    with pytest.raises(ValueError, match="challenge='singlecoil'.*3 coil"):
        single(masked, mask, None, (16, 20))
    with pytest.raises(ValueError, match="challenge='multicoil'.*1 coil"):
        net(masked[:, :1], mask, None, (16, 20))


class Pointwise(torch.nn.Module):
    """A refinement acting on each pixel alone: commutes with cropping the rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.3 * x + 0.1 * x * x.abs()


def test_crop_readout_is_exact_for_an_object_inside_the_cropped_rows():
    """Cropping the (fully sampled) readout to the target rows changes nothing for an object
    inside them, with data consistency and a pixelwise refinement in every cascade."""
    g = torch.Generator().manual_seed(1)
    image = torch.zeros((1, 1, 48, 40), dtype=torch.complex64)
    image[..., 16:32, 8:32] = torch.randn((1, 1, 16, 24), dtype=torch.complex64, generator=g)
    mask = torch.zeros((1, 40), dtype=torch.bool)
    mask[:, ::3] = True
    mask[:, 17:23] = True
    kspace = fft2c(image) * mask[:, None, None, :]
    outs = []
    for crop in (False, True):
        net = VarNet(**dict(SIZES, num_cascades=2), challenge="singlecoil", crop_readout=crop)
        for cascade in net.cascades:
            cascade.model = Pointwise()
            cascade.dc_weight.data.fill_(0.7)
        with torch.no_grad():
            outs.append(net(kspace, mask, None, (24, 40)))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5 * float(outs[0].max()))


def test_checkpoint_cascades_same_gradients():
    masked, mask, _ = _batch(width=33, coils=2, height=32)
    grads = []
    for flag in (False, True):
        torch.manual_seed(0)
        net = VarNet(**SIZES, checkpoint_cascades=flag).train()
        net(masked, mask, None, (16, 16)).sum().backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
    torch.testing.assert_close(grads[1], grads[0])


def test_norm_groups_reach_the_cascades_and_the_map_network():
    net = VarNet(**SIZES, norm_groups=2)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.num_groups == 2 for m in norms)
    assert net.sens_net is not None and any(m in norms for m in net.sens_net.modules())
    with pytest.raises(ValueError, match=r"^norm_groups: 3 must divide"):
        VarNet(**SIZES, norm_groups=3)


def test_acs_maps_are_the_physics_estimate_and_replace_the_map_network():
    """maps=acs: no map network, the maps are estimate_sens_maps' (a test with maps swapped
    for ones, or the learned network kept, fails here)."""
    from mri_recon.physics.coils import estimate_sens_maps

    masked, mask, _ = _batch(width=37, coils=3, height=40)
    net = VarNet(**SIZES, maps="acs")
    assert net.sens_net is None
    assert not any("sens_net" in name for name, _ in net.named_parameters())
    torch.testing.assert_close(net.sens_maps(masked, mask, None), estimate_sens_maps(masked, mask))
    assert net(masked, mask, None, (16, 20)).shape == (2, 16, 20)
    with pytest.raises(
        ValueError, match=r"^maps: must be one of learned, acs, refined, fastmri, got 'espirit'"
    ):
        VarNet(**SIZES, maps="espirit")


def test_refined_maps_start_at_the_acs_ratio_and_learn():
    """maps=refined: at initialisation the maps are the centre band's coil images over their
    RSS (a map network that is not the identity fails), and the map network gets gradients."""
    masked, mask, _ = _batch(width=37, coils=3, height=40)
    net = VarNet(**SIZES, maps="refined").train()
    start, stop = center_band(mask[0])
    band = torch.zeros_like(mask)
    band[:, start:stop] = True
    low = ifft2c(masked * band[:, None, None, :])
    expected = low / rss(low, dim=1)[:, None]
    torch.testing.assert_close(net.sens_maps(masked, mask, None), expected, rtol=1e-4, atol=1e-5)
    net(masked, mask, None, (16, 20)).sum().backward()
    last = net.sens_net.unet.up_conv[-1][-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0


def test_num_cascades_zero():
    with pytest.raises(ValueError, match="^num_cascades: must be an int >= 1, got 0"):
        VarNet(num_cascades=0)


def test_bf16_autocast_runs_the_unets_and_returns_float32():
    masked, mask, _ = _batch(width=33, coils=2, height=32)
    net = VarNet(**SIZES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(masked, mask, None, (16, 16))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_band_is_center_band_or_fastmris_rule_per_mask():
    from fastmri.models.varnet import SensitivityModel

    from mri_recon.models.varnet import _band

    g = torch.Generator().manual_seed(0)
    sens = SensitivityModel(chans=2, num_pools=1)
    for width in (29, 30, 367):
        masks = torch.rand((40, width), generator=g) < 0.5
        masks[:5] = True  # fully sampled: fastMRI's argmin counts 0
        masks[5:10, width // 2] = False  # no centre column
        for i in range(10, 40):  # a centre band of 1..9 columns
            n = i % 9 + 1
            start = (width - n + 1) // 2
            masks[i, start : start + n] = True
        got = _band(masks, None, symmetric=False)
        for mask, row in zip(masks, got, strict=True):
            start, stop = center_band(mask)
            assert row.nonzero().flatten().tolist() == list(range(start, stop))
        pad, num_low = sens.get_pad_and_num_low_freqs(masks[:, None, None, :, None], None)
        got = _band(masks, None, symmetric=True)
        for row, p, n in zip(got, pad.tolist(), num_low.tolist(), strict=True):
            assert row.nonzero().flatten().tolist() == list(range(p, p + n))
        fixed = _band(masks[:2], 7, symmetric=True)
        assert fixed[0].nonzero().flatten().tolist() == list(
            range((width - 6) // 2, (width - 6) // 2 + 7)
        )
