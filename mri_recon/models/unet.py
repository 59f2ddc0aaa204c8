"""The fastMRI U-Net with a selectable normalisation layer and an optional residual path.

References:
    O. Ronneberger, P. Fischer, T. Brox. "U-Net: Convolutional networks for biomedical image
    segmentation." MICCAI 2015.
    J. Zbontar, F. Knoll, A. Sriram et al. "fastMRI: An open dataset and benchmarks for
    accelerated MRI." arXiv:1811.08839, 2018 (the architecture below is
    ``fastmri.models.Unet``, v0.3.0).
    Y. Wu, K. He. "Group Normalization." ECCV 2018.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mri_recon.checks import boolean, integer, number, positive_int
from mri_recon.models.norms import make_norm


class ConvBlock(nn.Module):
    """Two (3x3 conv without bias, ``norm``, LeakyReLU(0.2), Dropout2d(drop_prob)) layers."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        drop_prob: float,
        norm: str,
        norm_groups: int | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_chans, out_chans, kernel_size=3, padding=1, bias=False),
            make_norm(norm, out_chans, norm_groups),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Dropout2d(drop_prob),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            make_norm(norm, out_chans, norm_groups),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Dropout2d(drop_prob),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, in_chans, h, w) -> float (B, out_chans, h, w)."""
        return self.layers(image)


class TransposeConvBlock(nn.Module):
    """2x2 stride-2 transposed conv without bias, ``norm``, LeakyReLU(0.2): doubles h and w."""

    def __init__(
        self, in_chans: int, out_chans: int, norm: str, norm_groups: int | None = None
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(in_chans, out_chans, kernel_size=2, stride=2, bias=False),
            make_norm(norm, out_chans, norm_groups),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, in_chans, h, w) -> float (B, out_chans, 2h, 2w)."""
        return self.layers(image)


class Unet(nn.Module):
    """U-Net (Ronneberger et al. 2015) as in fastMRI (Zbontar et al. 2018), any norm.

    Encoder: ``num_pool_layers`` ConvBlocks, each followed by 2x2 average pooling (fastMRI's
    choice; the original U-Net max-pools), channels ``chans, 2 chans, ...``; a bottleneck
    ConvBlock; decoder: TransposeConvBlock, skip concatenation, ConvBlock, and a final
    1x1 conv (with bias) to ``out_chans``. Odd sizes are handled as in fastMRI's
    ``Unet.forward``: the upsampled map is reflect-padded by one pixel on the right/bottom
    to match its skip connection. With ``residual=True`` the input is added to the output
    (the network learns the correction to the zero-filled image).

    Parameter count at ``chans=32, num_pool_layers=4`` (``in_chans = out_chans = 1``):
    ``none`` 7,756,097 (= ``fastmri.models.Unet(1, 1, 32, 4)``, whose InstanceNorm has no
    affine); ``group``, ``layer``, ``instance`` and ``batch`` add a scale and shift per
    normalised channel, 2 x 3,424 = 6,848 more: 7,762,945. With ``norm="instance"`` and
    the affine at its initial value (scale 1, shift 0) and ``residual=False`` the output
    equals fastMRI's for the same weights.

    Args:
        in_chans: channels of the input image (1 for a magnitude image).
        out_chans: channels of the output image.
        chans: channels after the first convolution (fastMRI ``chans``).
        num_pool_layers: number of down- and up-sampling levels.
        drop_prob: ``Dropout2d`` probability in every ConvBlock, in [0, 1).
        norm: normalisation layer, one of :data:`mri_recon.models.norms.NORM_TYPES`.
        residual: add the input to the output (needs ``in_chans == out_chans``).
        norm_groups: GroupNorm groups of ``norm="group"``: None for the largest divisor of
            each layer's channel count up to 32 (Wu & He's 32 where it divides), an int for
            that many groups in every layer; it must divide every level's channel count
            ``chans * 2**i``, i = 0..num_pool_layers (1 is layer norm over the channels,
            ``chans`` is instance norm at the first level).
    """

    def __init__(
        self,
        in_chans: int = 1,
        out_chans: int = 1,
        chans: int = 32,
        num_pool_layers: int = 4,
        drop_prob: float = 0.0,
        norm: str = "group",
        residual: bool = True,
        norm_groups: int | None = None,
    ) -> None:
        super().__init__()
        _check_config(in_chans, out_chans, chans, num_pool_layers, drop_prob, residual)
        check_norm_groups(norm, norm_groups, [chans * 2**i for i in range(num_pool_layers + 1)])
        self.in_chans, self.out_chans, self.chans = in_chans, out_chans, chans
        self.num_pool_layers, self.drop_prob = num_pool_layers, drop_prob
        self.norm, self.residual, self.norm_groups = norm, residual, norm_groups
        g = norm_groups

        self.down_sample_layers = nn.ModuleList([ConvBlock(in_chans, chans, drop_prob, norm, g)])
        ch = chans
        for _ in range(num_pool_layers - 1):
            self.down_sample_layers.append(ConvBlock(ch, ch * 2, drop_prob, norm, g))
            ch *= 2
        self.conv = ConvBlock(ch, ch * 2, drop_prob, norm, g)

        self.up_conv = nn.ModuleList()
        self.up_transpose_conv = nn.ModuleList()
        for _ in range(num_pool_layers - 1):
            self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch, norm, g))
            self.up_conv.append(ConvBlock(ch * 2, ch, drop_prob, norm, g))
            ch //= 2
        self.up_transpose_conv.append(TransposeConvBlock(ch * 2, ch, norm, g))
        self.up_conv.append(
            nn.Sequential(
                ConvBlock(ch * 2, ch, drop_prob, norm, g),
                nn.Conv2d(ch, out_chans, kernel_size=1, stride=1),
            )
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, in_chans, h, w), h and w >= 2 ** num_pool_layers (any parity) -> float
        (B, out_chans, h, w)."""
        if not torch.jit.is_scripting():  # TorchScript export compiles the rest
            self._check_input(image)
        stack = []
        output = image
        for layer in self.down_sample_layers:
            output = layer(output)
            stack.append(output)
            output = F.avg_pool2d(output, kernel_size=2, stride=2, padding=0)
        output = self.conv(output)

        for transpose_conv, conv in zip(self.up_transpose_conv, self.up_conv, strict=True):
            skip = stack.pop()
            output = transpose_conv(output)
            # floor-pooling an odd size loses one row/column: pad it back (right/bottom);
            # padding by 0 is the identity, and no branch keeps exported graphs shape-generic
            pad_w = skip.shape[-1] - output.shape[-1]
            pad_h = skip.shape[-2] - output.shape[-2]
            output = F.pad(output, [0, pad_w, 0, pad_h], "reflect")
            output = conv(torch.cat([output, skip], dim=1))  # (B, 2 ch, h', w') -> (B, ch, ..)

        return output + image if self.residual else output

    def _check_input(self, image: torch.Tensor) -> None:
        min_size = 2**self.num_pool_layers
        if image.ndim != 4 or image.shape[1] != self.in_chans or min(image.shape[-2:]) < min_size:
            raise ValueError(
                f"Unet input image of shape {tuple(image.shape)}: expected (B, in_chans, h, w) "
                f"with {self.in_chans} channels and h, w >= 2**num_pool_layers = {min_size}"
            )


def check_norm_groups(norm: str, norm_groups: int | None, channels: list[int]) -> None:
    """Raise ValueError naming ``norm_groups`` unless it is None, or an int >= 1 with
    ``norm="group"`` that divides every channel count in ``channels`` (the levels of the
    network that owns the layers)."""
    if integer("norm_groups", norm_groups, 1, optional=True) is None:
        return
    bad = sorted({c for c in channels if c % norm_groups})
    if norm != "group" or bad:
        reason = (
            f"{norm_groups} applies to norm=group only, got norm={norm!r} (set norm_groups=null)"
            if norm != "group"
            else f"{norm_groups} must divide every level's channel count "
            f"{sorted(set(channels))}; it does not divide {bad}"
        )
        raise ValueError(f"norm_groups: {reason}")


def _check_config(
    in_chans: int,
    out_chans: int,
    chans: int,
    num_pool_layers: int,
    drop_prob: float,
    residual: bool,
) -> None:
    """Raise ValueError naming the argument that is out of range (``norm``: :func:`make_norm`)."""
    for name, value in (
        ("in_chans", in_chans),
        ("out_chans", out_chans),
        ("chans", chans),
        ("num_pool_layers", num_pool_layers),
    ):
        positive_int(name, value)
    number("drop_prob", drop_prob, 0, 1, open_high=True)
    if boolean("residual", residual) and in_chans != out_chans:
        raise ValueError(f"residual: true needs in_chans == out_chans, got {in_chans}, {out_chans}")
