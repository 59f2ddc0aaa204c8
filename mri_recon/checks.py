"""Value checks shared by every constructor that owns a config value (framework-free).

Each check takes the argument's own name and its value, returns the value (converted where
that is lossless) and raises ``ValueError`` whose message
is ``<name>: <reason>`` (a value of the wrong kind is a ``ValueError`` too: to a user both
are a bad value). The message names the constructor's argument, never a config path:
the CLI's one builder prefixes the group it was building (``mask.accelerations: ...``).
``bool`` is never an integer or a number here, although Python says it is.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any


def _is_number(value: Any, integer: bool) -> bool:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool):
        return False
    if isinstance(value, kinds):
        return True
    # numpy scalars: np.int64 is not an int, np.float64 is a float already
    return (
        hasattr(value, "dtype")
        and getattr(value, "ndim", 1) == 0
        and (value.dtype.kind in ("i", "u") or (not integer and value.dtype.kind == "f"))
    )


def integer(name: str, value: Any, low: int | None = None, *, optional: bool = False) -> Any:
    """``value`` as an int >= ``low`` (None passes when ``optional``).

    Raises:
        ValueError: ``<name>: must be an int >= <low>, got <value>``.
    """
    if value is None and optional:
        return None
    if not _is_number(value, integer=True) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        null = " or null" if optional else ""
        raise ValueError(f"{name}: must be an int{bound}{null}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` as an int >= 1 (None passes when ``optional``)."""
    return integer(name, value, 1, optional=optional)


def number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
    optional: bool = False,
) -> Any:
    """``value`` as a finite float in ``[low, high]`` (``(`` / ``)`` where ``open_*``).

    Raises:
        ValueError: ``<name>: must be a number in (0, 1], got <value>`` (the bounds given).
    """
    if value is None and optional:
        return None
    ok = _is_number(value, integer=False) and math.isfinite(value)
    ok = ok and (low is None or (value > low if open_low else value >= low))
    ok = ok and (high is None or (value < high if open_high else value <= high))
    if not ok:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if open_low or low is None else '['}{lo}, {hi}"
        interval += ")" if open_high or high is None else "]"
        null = " or null" if optional else ""
        raise ValueError(f"{name}: must be a number in {interval}{null}, got {value!r}")
    return float(value)


def positive(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` as a finite float > 0."""
    return number(name, value, 0, open_low=True, optional=optional)


def rate(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` as a fraction in (0, 1]."""
    return number(name, value, 0, 1, open_low=True, optional=optional)


def one_of(name: str, value: Any, options: Collection[Any]) -> Any:
    """``value`` if it is one of ``options``.

    Raises:
        ValueError: ``<name>: must be one of a, b, c, got <value>``.
    """
    if value not in options:
        listed = ", ".join("null" if o is None else str(o) for o in options)
        raise ValueError(f"{name}: must be one of {listed}, got {value!r}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    return value
