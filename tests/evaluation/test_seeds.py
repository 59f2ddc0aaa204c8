"""mri_recon.evaluation.seeds on a hand-built per_volume.csv: the seed averaging, per-seed
means, their sd, the paired difference against the reference and the win count, checked
against values computed here from the raw rows."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

import numpy as np
import pytest

from mri_recon.evaluation import seeds as lib
from mri_recon.metrics.stats import bootstrap_ci

REGEX = r"^(?P<setting>.+)_s(?P<seed>\d+)$"
METRICS = ["ssim", "psnr", "nmse", "hfen", "ssim_fg"]  # two optional metrics too
SEEDS = ["1", "2", "10"]  # numeric order differs from string order
VOLUMES = [f"file{i}.h5" for i in range(4)]
ACCELERATIONS = [4.0, 8.0]
# CSV order: zero_filled, then b before a (settings keep first appearance), seeds shuffled
METHODS = ["zero_filled", "b_s10", "b_s1", "b_s2", "a_s2", "a_s1", "a_s10"]


def make_values(seed: int = 4) -> dict[tuple[str, str, float], dict[str, float]]:
    """(method, fname, acceleration) -> metrics, R=8 well below R=4, one tie."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng(seed + 101)  # the optional metrics: own stream
    values = {}
    for method in METHODS:
        for fname in VOLUMES:
            for r in ACCELERATIONS:
                shift = 0.0 if r == 4.0 else 0.2
                values[(method, fname, r)] = {
                    "ssim": float(rng.uniform(0.6, 0.9) - shift),
                    "psnr": float(rng.uniform(25.0, 35.0) - 10 * shift),
                    "nmse": float(rng.uniform(0.01, 0.05) + shift / 10),
                    "hfen": float(extra.uniform(0.2, 0.5) + shift),
                    "ssim_fg": float(extra.uniform(0.5, 0.8) - shift),
                }
    for method in METHODS[1:]:  # a tie: neither a nor b wins on file3 at R=4
        values[(method, "file3.h5", 4.0)] = values[("a_s1", "file3.h5", 4.0)]
    return values


def write_per_volume(path: Path, values: dict, drop: tuple | None = None) -> Path:
    """A per_volume.csv as mri-recon-eval writes it (extra columns included)."""
    columns = ["fname", "acquisition", "method", "mask", "acceleration", "center_fraction"]
    columns += [*METRICS, "seconds_per_slice", "num_slices", "challenge", "split"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for (method, fname, r), metrics in values.items():
            if (method, fname, r) == drop:
                continue
            acquisition = "CORPD_FBK" if fname in VOLUMES[:2] else "CORPDFS_FBK"
            writer.writerow(
                {"fname": fname, "acquisition": acquisition, "method": method, "mask": "m"}
                | {"acceleration": r, "center_fraction": 0.08, **metrics}
                | {"seconds_per_slice": 0.1, "num_slices": 3}
                | {"challenge": "singlecoil", "split": "val"}
            )
    return path


def seed_avg(values: dict, setting: str, fname: str, r: float, metric: str) -> float:
    return statistics.fmean(values[(f"{setting}_s{s}", fname, r)][metric] for s in SEEDS)


@pytest.fixture
def values() -> dict:
    return make_values()


@pytest.fixture
def rows(tmp_path, values) -> list[dict]:
    frame = lib.read_per_volume(write_per_volume(tmp_path / "per_volume.csv", values), METRICS)
    rows, notes = lib.summarize_seeds(frame, REGEX, "a", METRICS)
    assert notes == []
    return rows


def test_rows_in_order_of_first_appearance_then_acceleration(rows):
    keys = [(r["setting"], r["acceleration"]) for r in rows]
    assert keys == [(s, r) for s in ("zero_filled", "b", "a") for r in ACCELERATIONS]
    by = {(r["setting"], r["acceleration"]): r for r in rows}
    assert by[("b", 4.0)]["seed_labels"] == "1 / 2 / 10" and by[("b", 4.0)]["seeds"] == 3
    assert by[("zero_filled", 8.0)]["seeds"] == 1 and by[("zero_filled", 8.0)]["volumes"] == 4


@pytest.mark.parametrize("r", ACCELERATIONS)
@pytest.mark.parametrize("metric", METRICS)
def test_seed_average_per_seed_means_and_sd(rows, values, metric, r):
    row = next(x for x in rows if x["setting"] == "b" and x["acceleration"] == r)
    averaged = [seed_avg(values, "b", v, r, metric) for v in VOLUMES]
    assert row[metric] == pytest.approx(statistics.fmean(averaged), rel=1e-12)
    assert (row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]) == pytest.approx(
        bootstrap_ci(averaged), rel=1e-12
    )
    per_seed = [statistics.fmean(values[(f"b_s{s}", v, r)][metric] for v in VOLUMES) for s in SEEDS]
    shown = [float(x) for x in row[f"{metric}_seed_means"].split(" / ")]
    assert shown == pytest.approx(per_seed, rel=1e-12)
    assert row[f"{metric}_seed_sd"] == pytest.approx(statistics.stdev(per_seed), rel=1e-12)


@pytest.mark.parametrize("r", ACCELERATIONS)
@pytest.mark.parametrize("metric", METRICS)
def test_paired_difference_and_wins_against_all_reference_seeds(rows, values, metric, r):
    row = next(x for x in rows if x["setting"] == "b" and x["acceleration"] == r)
    diffs = [
        seed_avg(values, "b", v, r, metric) - seed_avg(values, "a", v, r, metric) for v in VOLUMES
    ]
    assert row["reference"] == "a" and row["paired_volumes"] == 4
    assert row[f"{metric}_diff"] == pytest.approx(statistics.fmean(diffs), rel=1e-9)
    assert (row[f"{metric}_diff_ci_low"], row[f"{metric}_diff_ci_high"]) == pytest.approx(
        bootstrap_ci(diffs), rel=1e-9
    )
    better = sum(d < 0 if metric in ("nmse", "hfen") else d > 0 for d in diffs)
    assert row[f"{metric}_wins"] == better


@pytest.mark.parametrize("metric", METRICS)
def test_win_counts_are_not_trivial(rows, metric):
    """The fixture separates each metric's win rule from its opposite and from 'all'."""
    assert any(r[f"{metric}_wins"] in (1, 3) for r in rows if r["setting"] == "b")


def test_reference_row_has_no_difference(rows):
    for row in (x for x in rows if x["setting"] == "a"):
        assert row["ssim_diff"] is None and row["ssim_wins"] is None
        assert row["paired_volumes"] == 0


def test_a_seed_missing_a_volume_is_named(tmp_path, values):
    path = write_per_volume(tmp_path / "p.csv", values, drop=("b_s2", "file2.h5", 8.0))
    frame = lib.read_per_volume(path, METRICS)
    with pytest.raises(
        ValueError, match=r"setting b: seed 2 lacks volume file2\.h5 at acceleration 8"
    ):
        lib.summarize_seeds(frame, REGEX, "a", METRICS)


@pytest.mark.parametrize(
    ("pattern", "reference", "message"),
    [
        (r"^(.+)_s(\d+)$", "a", r"lacks the named groups \['setting', 'seed'\]"),
        (r"^(?P<setting>.+)_s\d+$", "a", r"lacks the named groups \['seed'\]"),
        (r"^(?P<setting>.+_s(?P<seed>\d+)$", "a", "setting regex .*missing \\)"),
        (REGEX, "c", r"reference 'c' is not a setting; settings: \['zero_filled', 'b', 'a'\]"),
        (REGEX, "a_s1", "reference 'a_s1' is not a setting"),
    ],
)
def test_bad_regex_or_reference(tmp_path, values, pattern, reference, message):
    frame = lib.read_per_volume(write_per_volume(tmp_path / "p.csv", values), METRICS)
    with pytest.raises(ValueError, match=message):
        lib.summarize_seeds(frame, pattern, reference, METRICS)


def test_unmatched_methods_are_single_seed_settings_and_clashes_are_refused():
    got = lib.assign_settings(["zero_filled", "g16_bs1_s0", "g16_bs1_s1", "tv"], REGEX)
    assert got == {
        "zero_filled": ("zero_filled", "-"),
        "g16_bs1_s0": ("g16_bs1", "0"),
        "g16_bs1_s1": ("g16_bs1", "1"),
        "tv": ("tv", "-"),
    }
    with pytest.raises(ValueError, match="method adam_s0 falls in setting 'adam'"):
        lib.assign_settings(["adam", "adam_s0"], REGEX)


def test_bad_csv_is_named(tmp_path, values):
    path = write_per_volume(tmp_path / "p.csv", values)
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:1]) + "\n")
    with pytest.raises(ValueError, match="p.csv: no rows"):
        lib.read_per_volume(path, METRICS)
    path.write_text("\n".join([text[0], text[1], text[1]]) + "\n")
    with pytest.raises(ValueError, match="p.csv: line 3: a repeated row"):
        lib.read_per_volume(path, METRICS)
    with pytest.raises(ValueError, match=r"lacks the columns \['foo'\]"):
        lib.read_per_volume(path, [*METRICS, "foo"])
    key = ("a_s1", "file1.h5", 4.0)
    write_per_volume(path, values | {key: values[key] | {"psnr": float("inf")}})
    line = list(values).index(key) + 2
    with pytest.raises(ValueError, match=f"p.csv: line {line}: a non-finite value.*a_s1, file1.h5"):
        lib.read_per_volume(path, METRICS)
