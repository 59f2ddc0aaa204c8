"""The U-Net: shapes on odd sizes, gradients for every norm, residual path, fastMRI parity."""

from __future__ import annotations

import fastmri.models
import pytest
import torch
from torch import nn

from mri_recon.models.norms import NORM_TYPES
from mri_recon.models.unet import Unet

TINY = {"chans": 4, "num_pool_layers": 2}


@pytest.mark.parametrize("norm", NORM_TYPES)
@pytest.mark.parametrize("size", [(36, 44), (37, 45), (33, 20)])
def test_output_shape_any_size(norm: str, size: tuple[int, int]) -> None:
    net = Unet(norm=norm, **TINY)
    x = torch.randn(2, 1, *size)
    out = net(x)
    assert out.shape == x.shape and out.dtype == torch.float32


def test_multichannel_without_residual() -> None:
    net = Unet(in_chans=2, out_chans=3, residual=False, **TINY)
    assert net(torch.randn(1, 2, 21, 34)).shape == (1, 3, 21, 34)


@pytest.mark.parametrize("norm", NORM_TYPES)
def test_gradients_reach_every_parameter(norm: str) -> None:
    torch.manual_seed(0)
    net = Unet(norm=norm, **TINY).train()
    x = torch.randn(2, 1, 36, 44)
    loss = (net(x) - torch.randn_like(x)).pow(2).mean()
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, f"{norm}: no gradient for {name}"
        assert p.grad.abs().sum() > 0, f"{norm}: zero gradient for {name}"


def test_residual_adds_the_input() -> None:
    torch.manual_seed(1)
    with_res = Unet(residual=True, **TINY).eval()
    without = Unet(residual=False, **TINY).eval()
    without.load_state_dict(with_res.state_dict())
    x = torch.randn(2, 1, 35, 42)
    torch.testing.assert_close(with_res(x), without(x) + x)
    # a zeroed final 1x1 conv makes the residual U-Net the identity
    final = with_res.up_conv[-1][-1]
    nn.init.zeros_(final.weight)
    nn.init.zeros_(final.bias)
    torch.testing.assert_close(with_res(x), x)


@pytest.mark.parametrize("size", [(36, 44), (37, 45)])
def test_instance_norm_equals_fastmri_unet(size: tuple[int, int]) -> None:
    # fastMRI's InstanceNorm has no affine; ours starts at scale 1, shift 0.
    torch.manual_seed(2)
    reference = fastmri.models.Unet(1, 1, chans=4, num_pool_layers=3).eval()
    ours = Unet(chans=4, num_pool_layers=3, norm="instance", residual=False).eval()
    result = ours.load_state_dict(reference.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.endswith((".weight", ".bias")) for k in result.missing_keys)  # affines
    x = torch.randn(2, 1, *size)
    torch.testing.assert_close(ours(x), reference(x))


def _num_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("norm", NORM_TYPES)
def test_parameter_count_matches_fastmri(norm: str) -> None:
    with torch.device("meta"):  # no memory, no init cost
        reference = _num_params(fastmri.models.Unet(1, 1, 32, 4))
        ours = _num_params(Unet(chans=32, num_pool_layers=4, norm=norm))
    assert reference == 7_756_097
    # scale + shift per normalised channel: 3,424 channels are normalised at (32, 4)
    assert ours == reference + (0 if norm == "none" else 2 * 3_424)
    assert abs(ours - reference) / reference < 1e-3
    if norm == "group":
        assert ours == 7_762_945  # the number stated in Unet's docstring


@pytest.mark.parametrize("groups", [None, 1, 4, 8, 16])
def test_norm_groups_sets_every_group_norm(groups: int | None) -> None:
    net = Unet(chans=16, num_pool_layers=3, norm_groups=groups)
    norms = [m for m in net.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 2 * 3 + 2 + 3 * 3  # down convs, bottleneck, up (transpose + 2 convs)
    for norm in norms:  # null: the largest divisor <= 32 (16 channels -> 16 groups)
        assert norm.num_groups == (min(norm.num_channels, 32) if groups is None else groups)
    assert net(torch.randn(1, 1, 24, 24)).shape == (1, 1, 24, 24)


def test_explicit_groups_are_group_norm_over_channel_groups() -> None:
    """groups=4 at 16 channels: 4 channels share one mean and variance in the first layer."""
    net = Unet(chans=16, num_pool_layers=1, norm_groups=4)
    first = net.down_sample_layers[0].layers[1]
    x = torch.randn(2, 16, 6, 7) * torch.arange(1, 17.0)[None, :, None, None]
    y = first(x).reshape(2, 4, -1)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 4), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"norm_groups": 3},
            r"^norm_groups: 3 must divide .*\[16, 32, 64, 128\].* \[16, 32, 64, 128\]",
        ),
        ({"norm_groups": 32}, r"^norm_groups: 32 must divide .* does not divide \[16\]"),
        ({"norm_groups": 0}, r"^norm_groups: must be an int >= 1 or null, got 0"),
        (
            {"norm_groups": 4, "norm": "instance"},
            r"^norm_groups: 4 applies to norm=group only, got norm='instance'",
        ),
    ],
)
def test_bad_norm_groups_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Unet(chans=16, num_pool_layers=3, **kwargs)


def test_bad_config_and_inputs() -> None:
    with pytest.raises(ValueError, match=r"^norm: must be one of"):
        Unet(norm="weight")
    with pytest.raises(ValueError, match=r"^residual: true needs in_chans == out_chans, got 2, 1"):
        Unet(in_chans=2, out_chans=1, residual=True)
    with pytest.raises(ValueError, match=r"^drop_prob: must be a number in \[0, 1\)"):
        Unet(drop_prob=1.0)
    with pytest.raises(ValueError, match=r"^num_pool_layers: must be an int >= 1"):
        Unet(num_pool_layers=0)
    with pytest.raises(ValueError, match=r"^chans: must be an int >= 1, got True"):
        Unet(chans=True)
    net = Unet(**TINY)
    with pytest.raises(ValueError, match=r"\(1, 1, 3, 40\).*2\*\*num_pool_layers = 4"):
        net(torch.randn(1, 1, 3, 40))
    with pytest.raises(ValueError, match="1 channels"):
        net(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, in_chans, h, w\)"):
        net(torch.randn(16, 16))
