"""The comparisons' elementwise measure of many small tensors at once: the same numbers as one by one.

A step of a small model holds hundreds of tensors of a few elements; :func:`~parity.comparison.records._diff_arrays`
costs ~15 numpy calls each, and those calls were most of the comparisons' time in ``make parity``
(docs/performance.md). :func:`measures` measures a step's (or a stage's) tensors together.
"""

from __future__ import annotations

import math

import numpy as np

from parity.comparison.records import _diff_arrays, shape_of
from parity.trace.summary import Summary

__all__ = ["BATCH_MAX", "measures", "step_measures"]


def step_measures(sa, sb, stages) -> dict:
    """``(stage, name) ->`` the measure of every tensor of at most :data:`BATCH_MAX` elements two steps both hold,
    in the same shape (None for a summary), all measured together (:func:`measures`); a larger one is measured
    where it is compared (its difference kept for the carried error: :mod:`.pairdiff`). Call it in
    ``records.QUIET``'s error state."""
    keys, pairs = [], []
    for stage in stages:
        ta, tb = sa.get(stage), sb.get(stage)
        for name, xa in (ta or {}).items() if tb else ():
            xb = tb.get(name)
            if xb is not None and shape_of(xa) == shape_of(xb) and not (type(xa) is np.ndarray and xa.size > BATCH_MAX):
                keys.append((stage, name))
                pairs.append((xa, xb))
    return dict(zip(keys, measures(pairs)))


def measures(pairs: list) -> list:
    """Per ``(a, b)`` pair, :func:`~parity.comparison.records._diff_arrays` ``(a, b)``, or None where either is a
    :class:`~parity.trace.summary.Summary` (measured otherwise). Call it in ``records.QUIET``'s error state."""
    summary = [isinstance(a, Summary) or isinstance(b, Summary) for a, b in pairs]
    plain = iter(_diff_many([p for p, s in zip(pairs, summary) if not s]))
    return [None if s else next(plain) for s in summary]


#: Float tensors of at most this many elements are measured together, one numpy pass per dtype (:func:`_diff_many`).
BATCH_MAX = 4096


def _diff_many(pairs: list) -> list:
    """``[_diff_arrays(a, b) for a, b in pairs]``, the same numbers bit for bit, the small float tensors measured
    together: one concatenation, one difference and one segmented max per dtype instead of ~15 numpy calls per
    tensor (a step has hundreds of small tensors; the calls were most of the comparisons' time).

    Every operation is the per-tensor one on the same values (a difference in the tensors' own dtype, or both cast
    to float64 when they differ; maxima and minima are exact), the worst element is the first maximum as
    ``argmax`` takes it, and the scale is the same ``max`` of the same four numbers. A tensor whose difference or
    scale is not finite, and every other kind of input, goes through :func:`_diff_arrays` itself (a step's arrays:
    their extremes remembered, ``remember``). Call it in :data:`QUIET`'s error state, as :func:`_diff_arrays`."""
    out: list = [None] * len(pairs)
    groups: dict = {}
    for k, (a, b) in enumerate(pairs):
        if (type(a) is np.ndarray and type(b) is np.ndarray and a.dtype.kind == "f" and b.dtype.kind == "f"
                and 0 < a.size <= BATCH_MAX and a.shape == b.shape):
            groups.setdefault((a.dtype, b.dtype), []).append(k)
        else:
            out[k] = _diff_arrays(a, b, remember=True)
    for (da, db), ks in groups.items():
        if len(ks) == 1:
            out[ks[0]] = _diff_arrays(*pairs[ks[0]], remember=True)
            continue
        wide = None if da == db else np.float64  # as _diff_arrays: both in float64 when the dtypes differ
        big_a = np.concatenate([pairs[k][0].reshape(-1) for k in ks], dtype=wide)
        big_b = np.concatenate([pairs[k][1].reshape(-1) for k in ks], dtype=wide)
        sizes = [pairs[k][0].size for k in ks]
        starts = np.zeros(len(ks), dtype=np.intp)
        np.cumsum(sizes[:-1], out=starts[1:])
        err = big_a - big_b
        np.abs(err, out=err)
        worst = np.maximum.reduceat(err, starts)  # a NaN in a segment is its maximum: that tensor is looked at alone
        hit = np.flatnonzero(err == np.repeat(worst, sizes))
        # each segment's first maximum (a segment without one has a NaN maximum: never read)
        first = hit[np.minimum(np.searchsorted(hit, starts), hit.size - 1)] if hit.size else np.zeros(0, np.intp)
        va, vb, first = big_a[first].tolist(), big_b[first].tolist(), first.tolist()
        # the scale, max(a.max(), -a.min(), b.max(), -b.min()), and the relative error (as _relative, in float64;
        # both read only where finite). A zero scale is taken again as max() takes it: numpy's maximum of +0 and
        # -0 is either, max() keeps the first (the zero's sign is in the report)
        ext = [np.maximum.reduceat(big_a, starts), np.minimum.reduceat(big_a, starts),
               np.maximum.reduceat(big_b, starts), np.minimum.reduceat(big_b, starts)]
        scale = np.maximum(np.maximum(ext[0], np.negative(ext[1])), np.maximum(ext[2], np.negative(ext[3])))
        ok = (np.isfinite(worst) & np.isfinite(scale)).tolist()
        with np.errstate(all="ignore"):
            rel = np.divide(worst, scale, dtype=np.float64)
        rel[scale == 0.0] = math.inf
        rel[worst == 0.0] = 0.0
        zero = np.flatnonzero(scale == 0.0).tolist()
        worst, scale, rel, starts = worst.tolist(), scale.tolist(), rel.tolist(), starts.tolist()
        for j in zero:
            scale[j] = max(float(ext[0][j]), -float(ext[1][j]), float(ext[2][j]), -float(ext[3][j]))
        for j, k in enumerate(ks):
            if not ok[j]:
                out[k] = _diff_arrays(*pairs[k], remember=True)
                continue
            local = first[j] - starts[j]
            shape = pairs[k][0].shape
            out[k] = ((worst[j], rel[j], (local,) if len(shape) == 1 else _unravel(local, shape), va[j], vb[j],
                       scale[j]), False)
    return out


def _unravel(flat: int, shape: tuple) -> tuple:
    """``np.unravel_index(flat, shape)`` as a tuple of ints (C order), without numpy's call."""
    index = []
    for n in reversed(shape):
        flat, i = divmod(flat, n)
        index.append(i)
    return tuple(reversed(index))
