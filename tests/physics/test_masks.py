"""Column masks: sampling rate ~1/R with a full center, fastMRI parity, exact counts of the
variable-density and Poisson-disc masks, seeding, RNG hygiene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fastmri.data import subsample

from mri_recon.physics.masks import (
    MASK_TYPES,
    ColumnMaskFunc,
    apply_mask,
    center_band,
    file_seed,
    inclusion_probabilities,
    seed_label,
)

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
    "magic": subsample.MagicMaskFunc,
    "magic_fraction": subsample.MagicMaskFractionFunc,
}
DENSITY_KW = {  # the density masks in each density
    "variable_density": {},
    "variable_density_gaussian": {"density": "gaussian", "sigma": 0.2},
    "poisson": {},
    "poisson_gaussian": {"density": "gaussian", "sigma": 0.25, "min_gap": 3},
}


def _density_func(name: str, cfs: list[float], rs: list[float]) -> ColumnMaskFunc:
    return ColumnMaskFunc(name.split("_gaussian")[0], cfs, rs, **DENSITY_KW[name])


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("mask_type", list(FASTMRI_MASKS))
def test_equals_fastmri_for_same_seed(mask_type: str, width: int) -> None:
    cfs, rs = [0.08, 0.04], [4, 8]
    for seed in [0, 7, 12345, file_seed("file1000022.h5"), file_seed("file1001.h5")]:
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
        dense = mask_type in ("equispaced", "magic")
        expected = {r: num_low + (width - num_low) / r if dense else width / r for r in rs}
        assert min(rs, key=lambda r: abs(n - expected[r])) == s.acceleration, why
        reported.add(pair)
    assert reported == set(zip(cfs, rs, strict=True))


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(DENSITY_KW))
def test_density_masks_take_exactly_round_w_over_r_columns(name: str, width: int) -> None:
    """The count is exact for every seed (not only on average), for integral, fractional
    and mixed accelerations; the centre is full and placed as fastMRI places it."""
    for cfs, rs in (([0.08], [4]), ([0.04], [8]), ([0.1], [3.5]), ([0.08, 0.04], [4, 8])):
        fn = _density_func(name, cfs, rs)
        drawn = set()
        for seed in [*range(25), file_seed("file1000022.h5")]:
            s = fn(width, seed=seed)
            assert s.mask.dtype == torch.bool and s.mask.shape == (width,)
            r, cf = s.acceleration, s.center_fraction
            assert (cf, r) in zip(cfs, rs, strict=True)
            assert s.num_low_frequencies == round(width * cf)
            assert s.mask[_center_slice(width, s.num_low_frequencies)].all()
            assert s.num_sampled == int(s.mask.sum()) == round(width / r), (seed, r)
            assert s.mask_acceleration == width / round(width / r)
            drawn.add(r)
        assert drawn == set(rs)


def _outer(s) -> np.ndarray:  # the sampled columns outside the centre band
    outer = s.mask.clone()
    outer[_center_slice(len(s.mask), s.num_low_frequencies)] = False
    return torch.nonzero(outer).reshape(-1).numpy()


@pytest.mark.parametrize("density", ["polynomial", "gaussian"])
def test_variable_density_column_frequencies_follow_the_density(density: str) -> None:
    """Over many seeds each outer column is sampled with probability min(1, c w(k)), w the
    documented density of the distance k from the centre and c such that the expected count
    is round(W/R) - num_low; c found here by bisection, independently of the module."""
    width, cf, r, n = 61, 0.1, 2, 3000
    kw = {"p": 3.0} if density == "polynomial" else {"sigma": 0.25}
    fn = ColumnMaskFunc("variable_density", [cf], [r], density=density, **kw)
    num_low = round(width * cf)
    cols = np.setdiff1d(np.arange(width), np.arange(width)[_center_slice(width, num_low)])
    k = np.abs(cols - width // 2) / (width // 2 + 1)
    w = (1 - k) ** 3.0 if density == "polynomial" else np.exp(-(k**2) / (2 * 0.25**2))
    count = round(width / r) - num_low
    lo, hi = 0.0, 1e6
    for _ in range(200):
        c = (lo + hi) / 2
        lo, hi = (c, hi) if np.minimum(1, c * w).sum() < count else (lo, c)
    expected = np.minimum(1, hi * w)
    assert expected.max() == 1 and expected.min() < 0.1  # some saturate, the edge is rare
    freq = np.zeros(width)
    for seed in range(n):
        freq += fn(width, seed=seed).mask.numpy()
    freq = freq[cols] / n
    sd = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) <= 4.5 * sd + 1e-9), np.abs(freq - expected) / sd


def test_inclusion_probabilities_saturate_and_keep_proportions() -> None:
    w = np.array([10.0, 8.0, 1.0, 0.5, 0.5, 0.25])
    pi = inclusion_probabilities(w, 3)
    assert pi.sum() == pytest.approx(3) and pi.max() <= 1
    assert pi[0] == pi[1] == 1  # the two largest weights saturate
    np.testing.assert_allclose(pi[2:] / w[2:], 1 / w[2:].sum())  # the rest: in proportion
    assert np.all(inclusion_probabilities(w, 6) == 1) and np.all(inclusion_probabilities(w, 0) == 0)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("cf", "r", "gap"), [(0.08, 4, 2), (0.08, 4, 3), (0.04, 8, 4)])
def test_poisson_outer_columns_keep_the_minimum_gap(width: int, cf: float, r: int, gap: int):
    """Every pair of outer columns at least ``min_gap`` apart, on each side of the centre and
    across it, while uniform random columns of the same count often are not."""
    fn = ColumnMaskFunc("poisson", [cf], [r], min_gap=gap)
    uniform_close = 0
    for seed in range(30):
        s = fn(width, seed=seed)
        outer = _outer(s)
        assert len(outer) == round(width / r) - s.num_low_frequencies
        assert np.diff(outer).min() >= gap, (seed, np.diff(outer).min())
        vd = ColumnMaskFunc("variable_density", [cf], [r])(width, seed=seed)
        uniform_close += int(np.diff(_outer(vd)).min() < gap)
    assert uniform_close > 20  # the gap is a real constraint at these settings


def test_poisson_is_denser_near_the_centre_and_completes_a_tight_count() -> None:
    width, n = 368, 400
    fn = ColumnMaskFunc("poisson", [0.08], [4], p=3.0)
    freq = sum(fn(width, seed=seed).mask.double() for seed in range(n)) / n
    num_low = round(width * 0.08)
    band = _center_slice(width, num_low)
    near = torch.cat([freq[band.start - 40 : band.start], freq[band.stop : band.stop + 40]])
    far = torch.cat([freq[:40], freq[-40:]])
    assert near.mean() > 2 * far.mean()
    # 2 * gap - 1 above the mean spacing (5.4): dart throwing may fall short at gap 5 and
    # relaxes the gap for the last darts; the count stays exact
    tight = ColumnMaskFunc("poisson", [0.08], [4], min_gap=5)
    for seed in range(20):
        s = tight(width, seed=seed)
        assert s.num_sampled == round(width / 4) and np.diff(_outer(s)).min() >= 1


@pytest.mark.parametrize("name", list(DENSITY_KW))
def test_density_masks_are_seeded_by_int_or_file_seed(name: str) -> None:
    fn = _density_func(name, [0.08], [4])
    assert torch.equal(fn(W, seed=11).mask, fn(W, seed=11).mask)
    assert not torch.equal(fn(W, seed=11).mask, fn(W, seed=12).mask)
    a, b = fn(W, seed=file_seed("file1000022.h5")), fn(W, seed=file_seed("/x/file1000022.h5"))
    assert torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, fn(W, seed=file_seed("file1000023.h5")).mask)
    distinct = {tuple(fn(W, seed=s).mask.tolist()) for s in range(20)}
    assert len(distinct) == 20


def test_seed_label_writes_ints_and_file_names() -> None:
    assert seed_label(42) == "42" and seed_label(np.int64(7)) == "7"
    assert seed_label(file_seed("/data/file1000022.h5")) == "file1000022.h5"


def test_same_seed_same_mask_and_different_seeds_differ() -> None:
    fn = ColumnMaskFunc("random", [0.08], [4])
    assert torch.equal(fn(W, seed=11).mask, fn(W, seed=11).mask)
    assert not torch.equal(fn(W, seed=11).mask, fn(W, seed=12).mask)


def test_global_rng_untouched() -> None:
    np.random.seed(123)
    torch.manual_seed(123)
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    for mask_type in MASK_TYPES:
        ColumnMaskFunc(mask_type, [0.08, 0.04], [4, 8])(W, seed=5)
        ColumnMaskFunc(mask_type, [0.08, 0.04], [4, 8])(W, seed=file_seed("file1.h5"))
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
    with pytest.raises(ValueError, match="^accelerations: "):
        ColumnMaskFunc("random", [0.08], [0.5])
    for cf in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="^center_fractions: "):
            ColumnMaskFunc("random", [cf], [4])
    with pytest.raises(ValueError, match="center_fractions"):
        ColumnMaskFunc("random", [0.08, 0.04], [4])
    with pytest.raises(ValueError, match="^mask_type: "):
        ColumnMaskFunc("gaussian", [0.08], [4])
    with pytest.raises(ValueError, match="seed"):
        ColumnMaskFunc("random", [0.08], [4])(W, seed=None)


@pytest.mark.parametrize(
    ("mask_type", "kwargs", "field"),
    [
        ("variable_density", {"accelerations": [1]}, "accelerations"),
        ("poisson", {"accelerations": [0.9]}, "accelerations"),
        ("magic", {"accelerations": [4.5]}, "accelerations"),
        ("equispaced", {"accelerations": [2.5]}, "accelerations"),
        ("random", {"center_fractions": [0.25]}, "center_fractions"),  # 0.25 * 4 = 1
        ("magic_fraction", {"center_fractions": [0.3]}, "center_fractions"),
        ("variable_density", {"center_fractions": [1.2]}, "center_fractions"),
        ("variable_density", {"p": 0}, "p"),
        ("variable_density", {"p": -1.0}, "p"),
        ("poisson", {"density": "gaussian", "sigma": 0}, "sigma"),
        ("variable_density", {"density": "cauchy"}, "density"),
        ("poisson", {"min_gap": 0}, "min_gap"),
        ("poisson", {"min_gap": 2.5}, "min_gap"),
        ("poisson", {"min_gap": 6}, "min_gap"),  # mean outer spacing at 4x is 5.4
        ("random", {"p": 2}, "p"),
        ("variable_density", {"min_gap": 2}, "min_gap"),
    ],
)
def test_bad_mask_settings_are_one_line_errors_naming_the_field(
    mask_type: str, kwargs: dict, field: str
) -> None:
    args = {"center_fractions": [0.08], "accelerations": [4], **kwargs}
    with pytest.raises(ValueError, match=f"^{field}[:=]") as err:
        ColumnMaskFunc(mask_type, **args)
    assert "\n" not in str(err.value)


def test_center_band() -> None:
    m = torch.tensor([1, 0, 1, 1, 1, 1, 0, 1, 1], dtype=torch.bool)  # W=9, center index 4
    assert center_band(m) == (2, 6)
    assert m[slice(*center_band(m))].all()
    assert center_band(torch.ones(6, dtype=torch.bool)) == (0, 6)
    empty = torch.tensor([1, 1, 0, 1], dtype=torch.bool)  # center index 2 not sampled
    assert center_band(empty) == (2, 2)


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
