"""The norm factory: group-count rule, what each norm normalises over, bad names."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mri_recon.models.norms import NORM_TYPES, group_count, make_norm


@pytest.mark.parametrize("ch", range(1, 130))
def test_group_count_is_largest_divisor_at_most_32(ch: int) -> None:
    g = group_count(ch)
    assert ch % g == 0 and g <= 32
    assert all(ch % d != 0 for d in range(g + 1, 33)), f"a larger divisor of {ch} is <= 32"


@pytest.mark.parametrize(
    ("ch", "groups"), [(32, 32), (64, 32), (512, 32), (48, 24), (96, 32), (12, 12), (37, 1)]
)
def test_group_count_examples(ch: int, groups: int) -> None:
    norm = make_norm("group", ch)
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == groups == group_count(ch)
    assert norm.affine and norm.weight.shape == (ch,)


def test_group_count_honours_num_groups() -> None:
    assert group_count(48, 8) == 8 and group_count(48, 5) == 4


def test_explicit_num_groups_is_used_as_given() -> None:
    assert make_norm("group", 48, num_groups=8).num_groups == 8
    assert make_norm("group", 16, num_groups=16).num_groups == 16  # instance norm
    assert make_norm("group", 64, num_groups=1).num_groups == 1  # layer norm
    assert make_norm("group", 64, num_groups=None).num_groups == 32


def test_layer_is_one_group_over_channels_and_pixels() -> None:
    norm = make_norm("layer", 6)
    assert isinstance(norm, nn.GroupNorm) and norm.num_groups == 1 and norm.affine
    x = torch.randn(3, 6, 5, 7) * torch.arange(1, 7.0)[None, :, None, None] + 4.0
    y = norm(x)
    flat = y.reshape(3, -1)  # statistics over (ch, h, w) of each image
    torch.testing.assert_close(flat.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    # per channel the statistics are *not* normalised (channels had different scales)
    assert y[:, 0].std() < 0.5 < y[:, 5].std()


def test_group_normalises_each_group_of_channels() -> None:
    norm = make_norm("group", 48)  # 24 groups of 2 channels
    x = torch.randn(2, 48, 5, 6) * 3.0 + 1.0
    groups = norm(x).reshape(2, 24, -1)
    torch.testing.assert_close(groups.mean(-1), torch.zeros(2, 24), atol=1e-5, rtol=0)
    torch.testing.assert_close(groups.var(-1, unbiased=False), torch.ones(2, 24), atol=2e-3, rtol=0)


def test_instance_batch_none() -> None:
    inst = make_norm("instance", 5)
    assert isinstance(inst, nn.InstanceNorm2d) and inst.affine and inst.weight.shape == (5,)
    batch = make_norm("batch", 5)
    assert isinstance(batch, nn.BatchNorm2d) and batch.num_features == 5
    assert isinstance(make_norm("none", 5), nn.Identity)
    x = torch.randn(2, 5, 4, 6) * 2 + 3
    y = inst(x).reshape(2, 5, -1)
    torch.testing.assert_close(y.mean(-1), torch.zeros(2, 5), atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm", NORM_TYPES)
def test_every_norm_keeps_the_shape(norm: str) -> None:
    x = torch.randn(2, 8, 5, 7)
    assert make_norm(norm, 8)(x).shape == x.shape


def test_unknown_norm_names_the_field_and_choices() -> None:
    with pytest.raises(
        ValueError, match=r"^norm: must be one of group, batch, instance, layer, none, got 'weight'"
    ):
        make_norm("weight", 8)
