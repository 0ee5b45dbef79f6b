"""The comparisons' batched measure (:func:`parity.comparison.records._diff_many`) gives the per-tensor
measure's numbers bit for bit (``make parity``'s JSON must not change: docs/performance.md)."""

from __future__ import annotations

import numpy as np
import pytest

from parity.comparison.batched import BATCH_MAX, _diff_many
from parity.comparison.records import QUIET, _diff_arrays


def _same(x, y) -> bool:
    """Equal as the JSON report writes them: the same floats (NaN alike, the sign of a zero kept)."""
    if isinstance(x, tuple):
        return isinstance(y, tuple) and len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y))
    if isinstance(x, float) and isinstance(y, float):
        return (x != x and y != y) or (x == y and np.copysign(1.0, x) == np.copysign(1.0, y))
    return type(x) is type(y) and x == y


def _pairs(rng, n: int):
    out = []
    for k in range(n):
        kind = k % 9
        shape = [(), (1,), (7,), (3, 5), (2, 3, 4), (BATCH_MAX,), (BATCH_MAX + 1,), (0,), (4, 4)][kind]
        dt = [np.float32, np.float64][rng.integers(2)]
        a = rng.standard_normal(shape).astype(dt)
        b = (a + rng.standard_normal(shape).astype(dt) * [0.0, 1e-7, 1.0][rng.integers(3)]).astype(dt)
        if a.size and rng.random() < 0.25:  # special values: NaN, inf, zeros of both signs, ties
            flat_a, flat_b = a.reshape(-1), b.reshape(-1)
            j = rng.integers(a.size)
            special = [np.nan, np.inf, -np.inf, 0.0, -0.0][rng.integers(5)]
            flat_a[j] = special
            if rng.random() < 0.5:
                flat_b[j] = special
        if rng.random() < 0.1:
            a, b = np.zeros(shape, dt), -np.zeros(shape, dt)
        if rng.random() < 0.1 and a.ndim == 2:
            a, b = a.T, b.T  # not contiguous
        if rng.random() < 0.15:
            b = b.astype(np.float64 if b.dtype == np.float32 else np.float32)  # the drift: float64 vs float32
        if rng.random() < 0.05:
            a, b = np.nan_to_num(a, posinf=0, neginf=0).astype(np.int64), np.nan_to_num(b, posinf=0, neginf=0).astype(np.int64)
        out.append((a, b))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_batched_measure_is_the_per_tensor_one_bit_for_bit(seed):
    pairs = _pairs(np.random.default_rng(seed), 60)
    with np.errstate(**QUIET):
        expected = [_diff_arrays(a, b) for a, b in pairs]
        got = _diff_many(pairs)
    for (a, b), e, g in zip(pairs, expected, got):
        assert _same(e, g), (a.dtype, b.dtype, a.shape, e, g)


def test_ties_take_the_first_maximum_as_argmax_does():
    a = [np.array([1.0, 3.0, 1.0, 3.0]), np.array([[0.0, 2.0], [2.0, 0.0]])]
    b = [np.zeros(4), np.zeros((2, 2))]
    with np.errstate(**QUIET):
        got = _diff_many(list(zip(a, b)))
    assert got[0][0][2] == (1,) and got[1][0][2] == (0, 1)
    assert got == [_diff_arrays(x, y) for x, y in zip(a, b)]
