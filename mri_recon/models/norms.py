"""The normalisation-layer factory: the only place that knows the norm types.

Every network in ``mri_recon.models`` asks :func:`make_norm` for its normalisation layers,
so ``model.norm`` in the config selects them all at once.

- ``group``: GroupNorm (Wu & He, "Group Normalization", ECCV 2018); learnable per-channel
  affine. ``model.norm_groups`` sets the number of groups: ``null`` (the default) is Wu & He's
  32, reduced to the largest divisor of the channel count that is <= 32 (so chans 18 works);
  an int is used as given at every layer and must divide every channel count (the network
  that owns the layers checks it and names the field).
- ``layer``: GroupNorm with one group, i.e. statistics over the channels *and* pixels of
  one image (the convolutional layer norm of Wu & He, Fig. 2); learnable affine.
- ``instance``: InstanceNorm2d with learnable affine (fastMRI's U-Net uses it without).
- ``batch``: BatchNorm2d (running statistics, learnable affine).
- ``none``: identity.
"""

from __future__ import annotations

from torch import nn

from mri_recon.checks import one_of

NORM_TYPES = ("group", "batch", "instance", "layer", "none")


def group_count(num_channels: int, num_groups: int = 32) -> int:
    """The number of GroupNorm groups for ``num_channels`` (>= 1) channels: the largest
    divisor of ``num_channels`` that is <= ``num_groups`` (>= 1; Wu & He use 32)."""
    return max(g for g in range(1, min(num_groups, num_channels) + 1) if num_channels % g == 0)


def make_norm(norm: str, num_channels: int, num_groups: int | None = None) -> nn.Module:
    """The normalisation layer ``norm`` (one of :data:`NORM_TYPES`, the config field
    ``model.norm``) for a float (B, ch, h, w) feature map with ``num_channels`` = ch >= 1;
    ``num_groups`` (``model.norm_groups``, ``norm="group"`` only): None for
    :func:`group_count` ``(ch)``, an int for exactly that many groups (the network that owns
    the layers checks that it divides ch: :func:`mri_recon.models.unet.check_norm_groups`).

    Raises:
        ValueError: unknown ``norm`` (``norm: must be one of ...``).
    """
    one_of("norm", norm, NORM_TYPES)
    if norm == "group":
        groups = group_count(num_channels) if num_groups is None else num_groups
        return nn.GroupNorm(groups, num_channels, affine=True)
    if norm == "layer":
        return nn.GroupNorm(1, num_channels, affine=True)
    if norm == "instance":
        return nn.InstanceNorm2d(num_channels, affine=True)
    if norm == "batch":
        return nn.BatchNorm2d(num_channels)
    return nn.Identity()
