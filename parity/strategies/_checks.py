"""The hypothesis import, and the eager checks every strategy runs on its arguments."""

from __future__ import annotations

import math
from typing import Sequence

from parity.errors import ParityError

try:  # hypothesis is a test dependency; dense_case() works without it
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError:  # pragma: no cover - exercised only without the test extra
    st = None

    class InvalidArgument(ParityError):  # type: ignore[no-redef]
        """Stand-in so that ``except InvalidArgument`` works without hypothesis."""

        def __init__(self, message: str):
            super().__init__(message)


def _need_hypothesis() -> None:
    if st is None:
        raise ParityError("parity.strategies needs hypothesis: pip install 'parity[test]' (or pip install hypothesis)")


def _check_int(name: str, value, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if low is not None and value < low:
        raise InvalidArgument(f"{name}={value!r} must be >= {low}")


def _check_float(name: str, value, *, low: float | None = None, high: float | None = None, open_low=False, open_high=False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{name}={value!r} must be a finite number")
    if low is not None and (value < low or (open_low and value == low)):
        raise InvalidArgument(f"{name}={value!r} must be {'>' if open_low else '>='} {low}")
    if high is not None and (value > high or (open_high and value == high)):
        raise InvalidArgument(f"{name}={value!r} must be {'<' if open_high else '<='} {high}")


def _check_order(lo_name: str, lo, hi_name: str, hi) -> None:
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo!r} must be <= {hi_name}={hi!r}")


def _check_subset(name: str, values, allowed: Sequence[str]) -> tuple:
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise InvalidArgument(f"{name}={values!r} must be a tuple of names from {allowed}")
    values = tuple(values)
    if not values:
        raise InvalidArgument(f"{name} must not be empty")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidArgument(f"{name}: unknown {', '.join(map(repr, bad))}; expected some of {allowed}")
    return values


def _log_uniform(low: float, high: float):
    """Return floats in [low, high], log-uniform on a grid of 100 steps per decade, 3 significant digits."""
    if low == high:
        return st.just(float(low))
    lo, hi = math.ceil(math.log10(low) * 100), math.floor(math.log10(high) * 100)
    if lo > hi:  # no grid point inside: the ends only
        return st.sampled_from((float(low), float(high)))
    # An integer exponent (in hundredths of a decade) is ~10x cheaper to draw than a
    # float, and shrinks towards 0 (x = 1) when it is in range, else towards the end
    # nearer 1; rounding keeps printed (shrunk) configs short.
    return st.integers(lo, hi).map(lambda k: float(f"{min(max(10.0 ** (k / 100), low), high):.3g}"))

