"""mri_recon.checks: the shared value checks name their argument and reject bools."""

from __future__ import annotations

import numpy as np
import pytest

from mri_recon import checks


def test_integer_accepts_ints_and_numpy_ints() -> None:
    assert checks.integer("n", 3, 1) == 3
    assert (
        checks.integer("n", np.int64(2), 1) == 2 and type(checks.integer("n", np.int64(2))) is int
    )
    assert checks.positive_int("n", None, optional=True) is None


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2", None, np.float64(2.0)])
def test_positive_int_rejects(value) -> None:
    with pytest.raises(ValueError, match=r"^batch_size: must be an int >= 1, got "):
        checks.positive_int("batch_size", value)


def test_integer_bound_is_inclusive() -> None:
    assert checks.integer("k", 0, 0) == 0
    with pytest.raises(ValueError, match=r"k: must be an int >= 0"):
        checks.integer("k", -1, 0)


def test_number_intervals() -> None:
    assert checks.rate("rho", 1) == 1.0
    assert checks.number("p", 0.0, 0, 1) == 0.0
    with pytest.raises(ValueError, match=r"rho: must be a number in \(0, 1\], got 0"):
        checks.rate("rho", 0)
    with pytest.raises(ValueError, match=r"x: must be a number in \[0, 1\), got 1"):
        checks.number("x", 1, 0, 1, open_high=True)
    for bad in (float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(ValueError, match=r"^lam: "):
            checks.positive("lam", bad)
    assert checks.positive("lam", np.float32(0.5)) == 0.5


def test_one_of_and_boolean() -> None:
    assert checks.one_of("prescan", "full", ("full", "header")) == "full"
    with pytest.raises(ValueError, match=r"prescan: must be one of full, header, got 'x'"):
        checks.one_of("prescan", "x", ("full", "header"))
    with pytest.raises(ValueError, match=r"compile: must be one of null, default"):
        checks.one_of("compile", "fast", (None, "default"))
    assert checks.boolean("progress", False) is False
    with pytest.raises(ValueError, match=r"progress: must be true or false, got 1"):
        checks.boolean("progress", 1)
