"""SSDU's split of the acquired points: disjoint, covering, calibration kept, the ratio asked
for, reproducible per seed, Gaussian around the centre; point masks in the SENSE operator."""

from __future__ import annotations

import pytest
import torch

from mri_recon.physics.masks import ColumnMaskFunc, center_band
from mri_recon.physics.operators import SenseOperator
from mri_recon.physics.ssdu import SSDUSplit, calibration_points, split_seed

H, W = 40, 97


def _columns(b: int = 3, accel: int = 4) -> torch.Tensor:
    """bool (B, W): fastMRI random column masks with an 8% centre."""
    func = ColumnMaskFunc("random", [0.08], [accel])
    return torch.stack([func(W, seed=i).mask for i in range(b)])


@pytest.mark.parametrize("selection", ["gaussian", "uniform"])
@pytest.mark.parametrize("rho", [0.2, 0.4, 0.6])
def test_the_split_is_disjoint_covers_keeps_the_centre_and_has_the_ratio(rho, selection):
    columns = _columns()
    dc, loss = SSDUSplit(rho, selection)(columns, H, [1, 2, 3])
    acquired = columns[:, None, :].expand(-1, H, -1)
    assert dc.shape == loss.shape == (3, H, W)
    assert not (dc & loss).any()  # disjoint
    assert torch.equal(dc | loss, acquired)  # together exactly the acquired points
    for i in range(3):
        calib = calibration_points(columns[i], H)
        start, stop = center_band(columns[i])
        assert stop - start >= 2 and calib[:, start:stop].all()
        assert dc[i][calib].all() and not loss[i][calib].any()  # calibration on the DC side
        assert int(loss[i].sum()) == round(rho * int(acquired[i].sum()))  # the ratio


def test_the_split_is_reproducible_per_seed_and_fresh_per_seed():
    columns = _columns(1)
    split = SSDUSplit(0.4)
    a = split(columns, H, [split_seed(7, 0)])
    b = split(columns, H, [split_seed(7, 0)])
    assert torch.equal(a[1], b[1])
    others = [split(columns, H, [s])[1] for s in (split_seed(8, 0), split_seed(7, 1))]
    assert all(not torch.equal(a[1], o) for o in others)  # another sample, another split k
    assert split_seed(7, 0) != split_seed(7, 1) != split_seed(8, 0)


def test_gaussian_selection_concentrates_the_loss_set_at_the_centre():
    columns = torch.zeros(1, W, dtype=torch.bool)
    columns[:, ::2] = True  # every other column, and a centre band of 4
    columns[:, W // 2 - 2 : W // 2 + 2] = True
    rows = torch.arange(H, dtype=torch.float32) - H // 2

    def spread(selection: str) -> float:
        loss = torch.stack([SSDUSplit(0.3, selection)(columns, H, [s])[1][0] for s in range(20)])
        return float(rows[None, :, None].expand_as(loss)[loss].abs().mean())

    # the paper's std (H - 1) / 4 = 9.75 rows: mean |row offset| ~ 0.8 std; uniform ~ H / 4
    assert spread("gaussian") < 0.8 * spread("uniform")


def test_impossible_splits_and_bad_arguments_are_one_line():
    with pytest.raises(ValueError, match=r"^rho: must be a number in \(0, 1\)"):
        SSDUSplit(1.0)
    with pytest.raises(ValueError, match=r"^rho: must be a number in \(0, 1\)"):
        SSDUSplit(0)
    with pytest.raises(ValueError, match="^selection: "):
        SSDUSplit(0.4, "poisson")
    only_centre = torch.zeros(1, W, dtype=torch.bool)
    only_centre[:, W // 2 - 3 : W // 2 + 3] = True  # every acquired point is calibration
    with pytest.raises(ValueError, match=r"^rho: 0.4 asks for 96 loss points of 240 acquired"):
        SSDUSplit(0.4)(only_centre, H, [0])


def test_the_sense_operator_takes_point_masks_and_column_masks_alike():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(2, 3, H, W, dtype=torch.complex64, generator=g)
    x = torch.randn(2, H, W, dtype=torch.complex64, generator=g)
    columns = _columns(2)
    by_columns = SenseOperator(maps, columns)
    by_points = SenseOperator(maps, columns[:, None, :].expand(-1, H, -1))
    by_rows = SenseOperator(maps, columns[:, None, :])  # (B, 1, W)
    torch.testing.assert_close(by_points.A(x), by_columns.A(x))
    torch.testing.assert_close(by_rows.normal(x), by_columns.normal(x))
    assert torch.equal(by_columns.mask, columns) and by_points.mask.shape == (2, H, W)
    dc, loss = SSDUSplit(0.4)(columns, H, [0, 1])
    op = SenseOperator(maps, dc)
    assert op.adjointness_error(torch.Generator().manual_seed(1)) < 1e-5
    assert (op.A(x)[loss[:, None].expand(-1, 3, -1, -1)] == 0).all()  # nothing on held points
    with pytest.raises(ValueError, match=r"mask \(B, W\), \(B, 1, W\) or \(B, H, W\)"):
        SenseOperator(maps, columns[:, None, :].expand(-1, H - 1, -1))
