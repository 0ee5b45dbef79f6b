"""A step's arrays' own figures, taken once while the array lives (numpy only): each port's tensor is measured
in every pair the port is in and against its other dtype's (:class:`~parity.comparison.envelope.Drift`).
A step's arrays are never written to (the boundary copied them), so the same object gives the same figures."""

from __future__ import annotations

import weakref

import numpy as np

__all__ = ["shape_of", "EXTREMES_MIN"]  # (and _extremes, for records._diff_arrays)


def shape_of(x) -> tuple:
    """``np.shape(x)``, an array's own without numpy's call (asked for every tensor of every step and pair)."""
    return x.shape if type(x) is np.ndarray else np.shape(x)


#: Arrays of at least this many elements have their extremes remembered (:func:`_extremes`).
EXTREMES_MIN = 1024
_EXTREMES: dict = {}  # id(array) -> (weak reference to it, (max, min))


def _extremes(x: np.ndarray) -> tuple:
    """``(x.max(), x.min())`` of one of a step's arrays (never written to: the boundary copied them), remembered
    while it lives: a port's tensor is measured in every pair the port is in, and against its other dtype's
    (:class:`~parity.comparison.envelope.Drift`). Call it in :data:`parity.comparison.records.QUIET`'s error state."""
    if x.size < EXTREMES_MIN:
        return x.max(), x.min()
    key = id(x)
    hit = _EXTREMES.get(key)
    if hit is not None and hit[0]() is x:
        return hit[1]
    out = x.max(), x.min()
    try:
        ref = weakref.ref(x, lambda r, key=key: _EXTREMES.pop(key, None) if _EXTREMES.get(key, (None,))[0] is r else None)
    except TypeError:  # (nothing to remember it by)
        return out
    _EXTREMES[key] = (ref, out)
    return out
