"""SSDU's split of the acquired k-space points (Yaman et al., Magn. Reson. Med. 2020).

Self-supervised learning via data undersampling: each slice's acquired points Omega are split
into a set Theta the network's data consistency uses and a disjoint set Lambda only the loss
sees, ``|Lambda| = round(rho |Omega|)``. The calibration region (the fully sampled centre
columns, which the coil-map estimate and the network's map net read) always stays in Theta.
``selection="gaussian"`` is the paper's: points drawn without replacement with probability
proportional to a 2-D Gaussian centred on the k-space centre with standard deviations
``(H - 1) / 4`` and ``(W - 1) / 4`` (the paper's code rejects draws of ``round(N(centre,
(n - 1) / 4))`` outside the eligible points until the count is reached; weighted sampling
without replacement draws from the same law); ``"uniform"`` weighs every eligible point alike.
Pure torch, one generator per slice (so a slice's split depends only on its seed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mri_recon.checks import number, one_of
from mri_recon.physics.masks import center_band

SELECTIONS = ("gaussian", "uniform")
STD_SCALE = 4.0  # the paper's std_scale: std = (n - 1) / 4 along each axis


def split_seed(sample_seed: int, split: int) -> int:
    """The seed of split ``split`` (0..K-1) of a sample whose seed is ``sample_seed``."""
    state = np.random.SeedSequence([int(sample_seed), int(split), 0x55D0]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def calibration_points(mask: torch.Tensor, height: int) -> torch.Tensor:
    """The calibration region of a column mask bool (W,): its :func:`center_band` columns at
    every row, bool (H, W)."""
    start, stop = center_band(mask)
    calib = torch.zeros(height, mask.shape[-1], dtype=torch.bool, device=mask.device)
    calib[:, start:stop] = True
    return calib


def loss_points(
    acquired: torch.Tensor,
    calibration: torch.Tensor,
    rho: float,
    selection: str,
    seed: int,
) -> torch.Tensor:
    """SSDU's loss set Lambda of one slice: bool (H, W), a subset of ``acquired`` outside
    ``calibration`` with ``round(rho * |acquired|)`` points (Theta is ``acquired & ~Lambda``).

    Args:
        acquired: bool (H, W) the acquired points Omega.
        calibration: bool (H, W) the points that stay on the network's side.
        rho: ``|Lambda| / |Omega|``, in (0, 1).
        selection: ``gaussian`` (the paper's) or ``uniform``.
        seed: the generator's seed (the same seed gives the same split).

    Raises:
        ValueError: ``rho`` asks for more points than lie outside the calibration region.
    """
    height, width = acquired.shape
    eligible = (acquired & ~calibration).reshape(-1)
    count = int(round(rho * int(acquired.sum())))
    available = int(eligible.sum())
    if count > available or count < 1:
        raise ValueError(
            f"rho: {rho} asks for {count} loss points of {int(acquired.sum())} acquired, but "
            f"{available} lie outside the calibration region (1 to {available} can be held out)"
        )
    if selection == "gaussian":
        rows = torch.arange(height, dtype=torch.float64) - height // 2
        cols = torch.arange(width, dtype=torch.float64) - width // 2
        sy, sx = max(height - 1, 1) / STD_SCALE, max(width - 1, 1) / STD_SCALE
        weights = torch.exp(-0.5 * ((rows / sy)[:, None] ** 2 + (cols / sx)[None, :] ** 2))
    else:
        weights = torch.ones(height, width, dtype=torch.float64)
    weights = weights.reshape(-1) * eligible.cpu()
    generator = torch.Generator().manual_seed(int(seed) % 2**63)
    chosen = torch.multinomial(weights, count, replacement=False, generator=generator)
    out = torch.zeros(height * width, dtype=torch.bool)
    out[chosen] = True
    return out.reshape(height, width).to(acquired.device)


class SSDUSplit:
    """Draws SSDU splits: ``split(columns (B, W), height, seeds) -> (dc (B, H, W), loss (B, H, W))``.

    Args:
        rho: ``|loss set| / |acquired|``, in (0, 1) (the paper's 0.4).
        selection: ``gaussian`` (the paper's) or ``uniform``.
    """

    def __init__(self, rho: float = 0.4, selection: str = "gaussian") -> None:
        self.rho = number("rho", rho, 0, 1, open_low=True, open_high=True)
        self.selection = one_of("selection", selection, SELECTIONS)

    def __call__(
        self, columns: torch.Tensor, height: int, seeds: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Split each slice's acquired points (every row of its sampled columns).

        Args:
            columns: bool (B, W) each slice's acquired columns.
            height: H, the rows of the k-space grid the model works on.
            seeds: B seeds, one per slice (see :func:`split_seed`).

        Returns:
            ``(dc, loss)``, bool (B, H, W) each: disjoint, their union the acquired points,
            the calibration columns all in ``dc``.
        """
        dc, held = [], []
        for mask, seed in zip(columns, seeds, strict=True):
            acquired = mask[None, :].expand(height, -1)
            loss = loss_points(
                acquired, calibration_points(mask, height), self.rho, self.selection, seed
            )
            dc.append(acquired & ~loss)
            held.append(loss)
        return torch.stack(dc), torch.stack(held)
