"""Summaries over volumes: bootstrap intervals and paired differences on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from mri_recon.metrics.stats import (
    ALL,
    Interval,
    bootstrap_ci,
    describe,
    paired_differences,
    summarize,
)


def test_interval_covers_mean_and_is_reproducible() -> None:
    values = np.random.default_rng(0).normal(0.8, 0.05, size=25)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high
    assert (low, high) == bootstrap_ci(values, seed=3)
    assert (low, high) != bootstrap_ci(values, seed=4)


def test_default_interval_is_the_95_percent_percentile_bootstrap() -> None:
    """Against scipy's percentile bootstrap of the mean on skewed data: both ends agree to
    0.1 standard errors (Monte Carlo error ~0.03 at 20,000 resamples), while a 90% or 99%
    interval is off by 0.3-0.6 standard errors at each end. Checked through the defaults
    of every public entry (bootstrap_ci, describe, summarize, paired_differences)."""
    values = np.random.default_rng(5).exponential(1.0, size=40)
    ref = scipy.stats.bootstrap(
        (values,), np.mean, n_resamples=20000, method="percentile", rng=np.random.default_rng(1)
    ).confidence_interval
    se = values.std() / np.sqrt(values.size)
    rows = [
        {"fname": f"f{i}", "method": m, "acceleration": 4, "acquisition": "pd", "v": v}
        for i, x in enumerate(values)
        for m, v in (("zero_filled", 0.0), ("tv", x))
    ]
    n = 20000
    tv_rows = [r for r in rows if r["method"] == "tv"]
    intervals = {
        "bootstrap_ci": bootstrap_ci(values, num_resamples=n),
        "describe": describe(values, num_resamples=n),
        "summarize": summarize(tv_rows, ["v"], num_resamples=n)[0]["v"],
        "paired_differences": paired_differences(rows, ["v"], num_resamples=n)[0]["v"],
    }
    for name, ci in intervals.items():
        low, high = ci if isinstance(ci, tuple) else (ci.ci_low, ci.ci_high)
        assert abs(low - ref.low) < 0.1 * se and abs(high - ref.high) < 0.1 * se, (
            name,
            (low, high),
            (ref.low, ref.high),
        )


def test_global_numpy_state_is_untouched() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    bootstrap_ci([1.0, 2.0, 3.0], seed=0)
    assert np.array_equal(np.random.get_state()[1], before)


def test_interval_shrinks_with_n() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (10, 100, 1000):
        low, high = bootstrap_ci(rng.normal(0, 1, size=n), seed=0)
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]
    # the bootstrap width tracks the normal theory width 2 * 1.96 / sqrt(n)
    assert widths[2] == pytest.approx(2 * 1.96 / np.sqrt(1000), rel=0.2)


def test_describe_std_and_single_value() -> None:
    d = describe([1.0, 2.0, 3.0, 4.0])
    assert d.mean == 2.5 and d.std == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    one = describe([0.7])
    assert one.n == 1 and one.ci_low == one.ci_high == 0.7 and np.isnan(one.std)
    assert one.as_dict()["std"] is None


def test_bad_values() -> None:
    with pytest.raises(ValueError, match="empty"):
        describe([])
    with pytest.raises(ValueError, match="finite"):
        describe([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)


def _rows() -> list[dict]:
    """Six volumes, two acquisitions, two methods; tv = zero_filled + a known offset."""
    rows = []
    rng = np.random.default_rng(2)
    for i in range(6):
        acq = "CORPD" if i < 4 else "CORPDFS"
        base = {"fname": f"v{i}.h5", "acquisition": acq, "acceleration": 4.0}
        zf = {"ssim": 0.6 + 0.05 * rng.random(), "psnr": 25 + rng.random()}
        rows.append({**base, "method": "zero_filled", **zf})
        offset = 0.10 if acq == "CORPD" else 0.02
        rows.append({**base, "method": "tv", "ssim": zf["ssim"] + offset, "psnr": zf["psnr"] + 3})
    return rows


def test_summarize_groups_per_method_and_acquisition() -> None:
    rows = _rows()
    out = summarize(rows, ["ssim", "psnr"], seed=0)
    keys = [(e["method"], e["acceleration"], e["acquisition"]) for e in out]
    assert keys == [
        ("zero_filled", 4.0, ALL),
        ("zero_filled", 4.0, "CORPD"),
        ("zero_filled", 4.0, "CORPDFS"),
        ("tv", 4.0, ALL),
        ("tv", 4.0, "CORPD"),
        ("tv", 4.0, "CORPDFS"),
    ]
    tv_all = out[3]
    assert tv_all["n"] == 6 and isinstance(tv_all["ssim"], Interval)
    expected = np.mean([r["ssim"] for r in rows if r["method"] == "tv"])
    assert tv_all["ssim"].mean == pytest.approx(expected)
    assert [e["n"] for e in out] == [6, 4, 2, 6, 4, 2]


def test_paired_differences_on_constructed_data() -> None:
    rows = _rows()
    out = paired_differences(rows, ["ssim", "psnr"], reference="zero_filled", seed=0)
    assert [(e["method"], e["acquisition"]) for e in out] == [
        ("tv", ALL),
        ("tv", "CORPD"),
        ("tv", "CORPDFS"),
    ]
    by_acq = {e["acquisition"]: e for e in out}
    # constant per-volume offsets: the differences have zero spread and a point interval
    assert by_acq["CORPD"]["ssim"].mean == pytest.approx(0.10)
    assert by_acq["CORPD"]["ssim"].ci_low == pytest.approx(0.10)
    assert by_acq["CORPD"]["ssim"].ci_high == pytest.approx(0.10)
    assert by_acq["CORPDFS"]["ssim"].mean == pytest.approx(0.02)
    assert by_acq[ALL]["ssim"].mean == pytest.approx((4 * 0.10 + 2 * 0.02) / 6)
    assert by_acq[ALL]["psnr"].mean == pytest.approx(3.0)
    assert by_acq[ALL]["reference"] == "zero_filled"
    # paired beats marginal: the marginal interval of tv is wider than the paired one
    marginal = summarize([r for r in rows if r["method"] == "tv"], ["psnr"])[0]["psnr"]
    assert (
        marginal.ci_high - marginal.ci_low
        > by_acq[ALL]["psnr"].ci_high - by_acq[ALL]["psnr"].ci_low
    )


def test_paired_differences_need_partners() -> None:
    rows = [r for r in _rows() if not (r["method"] == "zero_filled" and r["fname"] == "v0.h5")]
    out = paired_differences(rows, ["ssim"])
    assert out[0]["n"] == 5  # v0 has no zero-filled partner
    assert paired_differences([r for r in rows if r["method"] == "tv"], ["ssim"]) == []


def test_sign_flip_pvalue_matches_scipys_permutation_test() -> None:
    from scipy import stats as sps

    from mri_recon.metrics.stats import sign_flip_pvalue

    rng = np.random.default_rng(3)
    for n in (5, 9):  # exact: every sign vector
        d = rng.normal(0.3, 1.0, n)
        ref = sps.permutation_test(
            (d,), np.mean, permutation_type="samples", alternative="two-sided", n_resamples=np.inf
        ).pvalue
        assert sign_flip_pvalue(d) == pytest.approx(ref, rel=1e-12)
    # random signs beyond 2^n > num_resamples: close to the exact value, never 0
    d = rng.normal(0.2, 1.0, 16)
    exact = sign_flip_pvalue(d, num_resamples=2**16)
    assert sign_flip_pvalue(d, num_resamples=4000, seed=1) == pytest.approx(exact, abs=0.03)
    assert sign_flip_pvalue(np.full(30, 0.1), num_resamples=500) == pytest.approx(1 / 501)
    assert sign_flip_pvalue([0.0, 0.0, 0.0]) == 1.0
    assert sign_flip_pvalue(np.full(4, 1.0)) == pytest.approx(2 / 16)  # all + or all -


def test_holm_matches_its_definition_on_a_textbook_family() -> None:
    from mri_recon.metrics.stats import holm

    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06, 0.06
    adjusted, rejected = holm([0.03, 0.01, 0.04, 0.02])
    assert adjusted == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert rejected == [False, True, False, False]
    adjusted, rejected = holm([0.001, 0.5, 0.012], alpha=0.05)
    assert adjusted == pytest.approx([0.003, 0.5, 0.024])
    assert rejected == [True, False, True]
    assert holm([0.9, 0.8])[0] == [1.0, 1.0]
