"""A large pair's elementwise measure with its ``|a - b|`` kept for the carried error (numpy only).

The comparator measures every tensor of a pair (:func:`~parity.comparison.records._diff_arrays`), then, for a
parameter or a layer output, the part of the difference beyond the error carried into it
(:meth:`parity.comparison.propagate.Propagation.excess`), which reads ``|a - b|`` in float64 again; and the
carried error of a parameter takes ``|m_a - m_b|`` of its first-moment slot, which the slots stage measures
again. For two float64 arrays those are the same float64 numbers: :func:`measure_keeping` measures a pair and
hands its difference on, :func:`measure_from` measures a pair from a difference already taken (issue 21: the
numpy passes over the large tensors were most of ``make parity``'s comparison time). Every figure is
:func:`~parity.comparison.records._diff_arrays`'s (``remember=True``), bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from parity.comparison.extremes import _extremes
from parity.comparison.records import _diff_arrays, _relative

__all__ = ["measure_keeping", "measure_from"]


def _plain64(a, b) -> bool:
    """Two float64 arrays of one shape (at least one element, at least one dimension)."""
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.dtype == np.float64 and b.dtype == np.float64
            and a.shape == b.shape and a.ndim > 0 and a.size > 0)


def measure_keeping(a, b, keep: bool = True):
    """``(_diff_arrays(a, b, remember=True), kept)``: ``kept`` is ``(|a - b|, the flat index of its first
    maximum)`` for two float64 arrays whose measure took the fast path (every difference finite) when ``keep``,
    else None. Call it in :data:`~parity.comparison.records.QUIET`'s error state."""
    if not _plain64(a, b):
        return _diff_arrays(a, b, remember=True), None
    err = np.subtract(a, b)  # (the measure's own difference: the same float64 subtraction, in place made absolute)
    np.abs(err, out=err)
    measure, flat = measure_from(a, b, err)
    return measure, ((err, flat) if keep and flat is not None else None)


def measure_from(a, b, err):
    """``(_diff_arrays(a, b, remember=True), flat)`` of two float64 arrays from ``err``, their ``|a - b|`` (taken
    elsewhere: the carried error's update): ``flat`` is the flat index of ``err``'s first maximum, None where the
    measure took the careful path (a difference not finite: taken again, by :func:`_diff_arrays` itself)."""
    flat = int(np.argmax(err))  # a NaN anywhere is the argmax: then the careful path
    max_abs = float(err.flat[flat])
    if math.isfinite(max_abs):
        (hi_a, lo_a), (hi_b, lo_b) = _extremes(a), _extremes(b)
        scale = float(max(hi_a, -lo_a, hi_b, -lo_b))
        if math.isfinite(scale):
            index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
            return ((max_abs, _relative(max_abs, scale), index, float(a.flat[flat]), float(b.flat[flat]), scale),
                    False), flat
    return _diff_arrays(a, b, remember=True), None
