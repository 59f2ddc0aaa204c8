"""Column masks: sampling rate ~1/R with a full center, fastMRI parity, seeding, RNG hygiene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fastmri.data import subsample

from mri_recon.physics.masks import ColumnMaskFunc, apply_mask, center_band, file_seed

W = 367  # odd and non-square on purpose
WIDTHS = (W, 368, 372)  # and even widths of genuine fastMRI knee k-space


def _center_slice(num_cols: int, num_low: int) -> slice:
    pad = (num_cols - num_low + 1) // 2  # fastMRI's placement of the center band
    return slice(pad, pad + num_low)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("mask_type", ["random", "equispaced_fraction"])
@pytest.mark.parametrize(("cf", "r"), [(0.08, 4), (0.04, 8)])
def test_rate_about_one_over_r_with_full_center(
    mask_type: str, cf: float, r: int, width: int
) -> None:
    fn = ColumnMaskFunc(mask_type, [cf], [r])
    rates = []
    for seed in range(40):
        s = fn(width, seed=seed)
        assert s.mask.dtype == torch.bool and s.mask.shape == (width,)
        assert s.acceleration == r and s.center_fraction == cf
        assert s.num_low_frequencies == round(width * cf)
        assert s.mask[_center_slice(width, s.num_low_frequencies)].all()
        start, stop = center_band(s.mask)
        assert stop - start >= s.num_low_frequencies
        rates.append(s.mask.float().mean().item())
    assert abs(np.mean(rates) - 1 / r) < 0.1 / r


@pytest.mark.parametrize("width", WIDTHS)
def test_plain_equispaced_is_fastmri_denser_definition(width: int) -> None:
    cf, r = 0.08, 4
    s = ColumnMaskFunc("equispaced", [cf], [r])(width, seed=3)
    ref, num_low = subsample.EquiSpacedMaskFunc([cf], [r])((1, width, 1), seed=3)
    assert torch.equal(s.mask, ref.reshape(-1) > 0) and s.num_low_frequencies == num_low
    assert s.mask.sum().item() > width / r  # center band + every R-th column: denser than 1/R
    outer = s.mask.clone()
    outer[_center_slice(width, num_low)] = False
    cols = torch.nonzero(outer).reshape(-1)
    assert len(cols) > 0 and bool(((cols - cols[0]) % r == 0).all())  # every R-th column


FASTMRI_MASKS = {
    "random": subsample.RandomMaskFunc,
    "equispaced": subsample.EquiSpacedMaskFunc,
    "equispaced_fraction": subsample.EquispacedMaskFractionFunc,
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("mask_type", ["random", "equispaced_fraction"])
def test_equals_fastmri_for_same_seed(mask_type: str, width: int) -> None:
    cfs, rs = [0.08, 0.04], [4, 8]
    for seed in [0, 7, file_seed("file1000022.h5")]:
        ours = ColumnMaskFunc(mask_type, cfs, rs)(width, seed=seed)
        ref, num_low = FASTMRI_MASKS[mask_type](cfs, rs)((1, width, 1), seed=seed)
        assert torch.equal(ours.mask, ref.reshape(-1) > 0)
        assert ours.num_low_frequencies == num_low


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("mask_type", list(FASTMRI_MASKS))
def test_mixed_accelerations_report_the_pair_drawn(mask_type: str, width: int) -> None:
    """configs/mask/random_4x8x and friends: each call draws one (center_fraction,
    acceleration) pair; what is reported must be that pair, the one fastMRI used for the
    mask (its num_low_frequencies and its density), not another config entry."""
    cfs, rs = [0.08, 0.04], [4, 8]
    fn = ColumnMaskFunc(mask_type, cfs, rs)
    reported = set()
    for seed in [*range(40), file_seed("file1000022.h5"), file_seed("file1001.h5")]:
        s = fn(width, seed=seed)
        ref, num_low = FASTMRI_MASKS[mask_type](cfs, rs)((1, width, 1), seed=seed)
        assert torch.equal(s.mask, ref.reshape(-1) > 0)
        pair, n = (s.center_fraction, s.acceleration), int(s.mask.sum())
        why = f"seed {seed}: reported {pair}, {s.num_low_frequencies}; fastMRI drew {num_low}, {n}"
        assert pair in zip(cfs, rs, strict=True), why
        assert s.num_low_frequencies == num_low == round(width * s.center_fraction), why
        # sampled columns: W / R, or the center plus every R-th other column (equispaced)
        dense = mask_type == "equispaced"
        expected = {r: num_low + (width - num_low) / r if dense else width / r for r in rs}
        assert min(rs, key=lambda r: abs(n - expected[r])) == s.acceleration, why
        reported.add(pair)
    assert reported == set(zip(cfs, rs, strict=True))


def test_same_seed_same_mask_and_different_seeds_differ() -> None:
    fn = ColumnMaskFunc("random", [0.08], [4])
    assert torch.equal(fn(W, seed=11).mask, fn(W, seed=11).mask)
    assert not torch.equal(fn(W, seed=11).mask, fn(W, seed=12).mask)


def test_global_rng_untouched() -> None:
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    for mask_type in ("random", "equispaced", "equispaced_fraction"):
        ColumnMaskFunc(mask_type, [0.08, 0.04], [4, 8])(W, seed=5)
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_file_seed_uses_the_name_not_the_path() -> None:
    name = "file1000022.h5"
    assert file_seed(name) == tuple(map(ord, name))
    assert file_seed(Path("/data/knee/singlecoil_val") / name) == file_seed(name)
    fn = ColumnMaskFunc("random", [0.08], [4])
    a = fn(W, seed=file_seed(name)).mask
    b = fn(W, seed=file_seed(f"/some/dir/{name}")).mask
    assert torch.equal(a, b)
    ref, _ = subsample.RandomMaskFunc([0.08], [4])((1, W, 1), seed=tuple(map(ord, name)))
    assert torch.equal(a, ref.reshape(-1) > 0)


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="mask.accelerations"):
        ColumnMaskFunc("random", [0.08], [0.5])
    for cf in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="mask.center_fractions"):
            ColumnMaskFunc("random", [cf], [4])
    with pytest.raises(ValueError, match="mask.center_fractions"):
        ColumnMaskFunc("random", [0.08, 0.04], [4])
    with pytest.raises(ValueError, match="mask.mask_type"):
        ColumnMaskFunc("gaussian", [0.08], [4])
    with pytest.raises(ValueError, match="seed"):
        ColumnMaskFunc("random", [0.08], [4])(W, seed=None)


def test_center_band() -> None:
    m = torch.tensor([1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=torch.bool)  # W=9, center index 4
    assert center_band(m) == (2, 6)
    assert m[slice(*center_band(m))].all()
    assert center_band(torch.ones(6, dtype=torch.bool)) == (0, 6)
    empty = torch.tensor([1, 1, 0, 1], dtype=torch.bool)  # center index 2 not sampled
    assert center_band(empty) == (2, 2)
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        center_band(torch.ones(2, 4, dtype=torch.bool))


def test_apply_mask_broadcasts_w_and_bw() -> None:
    g = torch.Generator().manual_seed(0)
    k = torch.randn(2, 3, 5, 4, dtype=torch.complex64, generator=g)
    m1 = torch.tensor([True, False, True, False])
    out = apply_mask(k, m1)
    assert torch.equal(out[..., 1], torch.zeros_like(out[..., 1]))
    assert torch.equal(out[..., 0], k[..., 0])
    mb = torch.tensor([[True, False, True, False], [False, True, True, True]])
    out = apply_mask(k, mb)  # (B, W) against (B, C, H, W)
    for b in range(2):
        torch.testing.assert_close(out[b], k[b] * mb[b].to(torch.float32))
    single = apply_mask(k[0, 0], m1)  # (H, W) with (W,)
    torch.testing.assert_close(single, k[0, 0] * m1.to(torch.float32))
    with pytest.raises(ValueError, match="k-space width 4"):
        apply_mask(k, torch.ones(5, dtype=torch.bool))
