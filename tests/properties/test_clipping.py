"""Clipping conventions: TF (tf.clip_by_*), torch (clip_grad_*_) and the numpy oracle (parity.portkit.transforms).

Each framework's clip function is called directly on drawn arrays (no training). What each
does, as its source says and these properties check:

* ``tf.clip_by_value`` == ``clip_grad_value_`` == ``np.clip``, bit for bit (P17).
* ``tf.clip_by_norm(t, c)`` = ``(t * c) / max(||t||, c)``: below the threshold ``(t*c)/c``,
  within 1 ulp of ``t`` (two roundings), not always ``t`` itself.
* ``tf.clip_by_global_norm(ts, c)``: ``scale = c * min(1/n, 1/c)``; below the threshold
  ``scale = c * fl(1/c)``, which is 1 or 1 - ulp (c = 49: 0.9999999999999999).
* ``clip_grad_norm_(ps, c)``: ``coef = min(c / (n + 1e-6), 1)`` (P18). Passes through bit for
  bit when ``n + 1e-6 <= c``; in the band ``c - 1e-6 < n <= c`` it shrinks where TF does not;
  above, it clips to ``c * n / (n + 1e-6)`` (1e-6/n relative below TF), and it is *not*
  idempotent: a second call shrinks again by ``c / (c n/(n+1e-6) + 1e-6) < 1``.
* After norm clipping the norm is <= c * (1 + (m + 2) eps) for m elements: a sum of m squares
  is within m eps, the sqrt, the division and the multiply within eps/2 each (worst case).
"""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from parity.portkit import transforms as T

pytestmark = [pytest.mark.tf, pytest.mark.torch]

EPS = {"float64": 2.0**-52, "float32": 2.0**-23}
TORCH_EPS = 1e-6  # torch_impl.dense.CLIP_NORM_EPS, restated: the property checks the source's constant


def _impls():
    from tf_impl.v2.dense import clip_gradients as tf_clip
    from torch_impl.dense import CLIP_NORM_EPS, clip_gradients as torch_clip

    assert CLIP_NORM_EPS == TORCH_EPS
    return tf_clip, torch_clip


@st.composite
def gradient_lists(draw, dtype=None):
    """1-3 arrays (up to 4x4) of one dtype, values in [-10, 10] on a 1e-3 grid.

    A grid, not any float: clipping 1e-308 makes subnormals, whose relative rounding is
    not eps (a property of IEEE arithmetic, not of a clipping convention).
    """
    dtype = dtype or draw(st.sampled_from(("float64", "float32")))
    elements = st.integers(-10000, 10000).map(lambda k: k / 1000)
    shapes = array_shapes(min_dims=1, max_dims=2, max_side=4)
    return dtype, draw(st.lists(arrays(dtype, shapes, elements=elements), min_size=1, max_size=3))


def _norm(arrays) -> float:
    return float(np.sqrt(sum(np.sum(np.asarray(a, np.float64) ** 2) for a in arrays)))


def _oracle(kind, arrays, limit, **kw):
    fn = {"value": T.clip_by_value, "norm": T.clip_by_norm, "global_norm": T.clip_by_global_norm}[kind]
    out, _ = fn(limit, **kw).update({i: a for i, a in enumerate(arrays)}, ())
    return [out[i] for i in range(len(arrays))]


limits = st.integers(-300, 100).map(lambda k: float(f"{10 ** (k / 100):.3g}"))  # 1e-3 .. 10


@given(gradient_lists(), limits)
def test_clip_by_value_identical(drawn, limit):
    """tf.clip_by_value == clip_grad_value_ == np.clip (the oracle), bit for bit."""
    tf_clip, torch_clip = _impls()
    dtype, arrays = drawn
    expected = _oracle("value", arrays, limit)
    for got in (tf_clip(arrays, "value", limit), torch_clip(arrays, "value", limit)):
        for e, g in zip(expected, got):
            assert g.dtype == np.dtype(dtype) and np.array_equal(e, g)


@given(gradient_lists(), limits, st.sampled_from(("value", "norm", "global_norm")))
def test_clip_twice_equals_clip_once_tf_and_oracle(drawn, limit, kind):
    """TF's and the oracle's clipping are idempotent: exactly for value, to (m + 4) eps for the norms."""
    tf_clip, _ = _impls()
    dtype, arrays = drawn
    m = sum(a.size for a in arrays)
    for clip in (lambda xs: tf_clip(xs, kind, limit), lambda xs: _oracle(kind, xs, limit)):
        once = clip(arrays)
        twice = clip(once)
        for a, b in zip(once, twice):
            if kind == "value":
                assert np.array_equal(a, b)
            else:
                # the second scale is within (m + 2) eps of 1 (norm bound), plus the (t*c)/c
                # or c*fl(1/c) roundings: (m + 4) eps relative per element
                assert np.all(np.abs(b - a) <= (m + 4) * EPS[dtype] * np.abs(a)), (kind, a, b)


@given(gradient_lists(), limits, st.sampled_from(("norm", "global_norm")))
def test_norm_bound_after_clipping(drawn, limit, kind):
    """After clip_by_norm / clip_by_global_norm (TF, torch, oracle) the norm is <= limit (1 + (m + 2) eps)."""
    tf_clip, torch_clip = _impls()
    dtype, arrays = drawn
    groups = (lambda xs: [[x] for x in xs]) if kind == "norm" else (lambda xs: [xs])
    for out in (tf_clip(arrays, kind, limit), torch_clip(arrays, kind, limit), _oracle(kind, arrays, limit)):
        for g in groups(out):
            m = sum(a.size for a in g)
            assert _norm(g) <= limit * (1 + (m + 2) * EPS[dtype]), (kind, _norm(g), limit)


@given(gradient_lists(), st.floats(1.0, 4.0))
def test_below_threshold_conventions(drawn, factor):
    """Below the threshold: TF multiplies by c*fl(1/c) (global) or computes (t*c)/c; torch passes through bit for bit."""
    tf_clip, torch_clip = _impls()
    dtype, arrays = drawn
    n = _norm(arrays)
    assume(n > 0)
    m = sum(a.size for a in arrays)
    # n + 1e-6 <= limit as torch computes it, in the dtype: torch's own norm may exceed the
    # float64 n by its rounding, (m + 2) eps relative (the bound test_norm_bound_after_clipping
    # uses). Without it, thorough found n = 13.8 (float32), factor 1: torch's coefficient was
    # 1 - 1 ulp and scaled 0.73 to 0.72999996.
    limit = float(np.asarray(n * factor + 2 * TORCH_EPS + (m + 2) * EPS[dtype] * n, dtype=dtype))
    one = np.asarray(limit, dtype) * (np.asarray(1.0, dtype) / np.asarray(limit, dtype))  # c * fl(1/c)
    for a, g in zip(arrays, tf_clip(arrays, "global_norm", limit)):
        assert np.array_equal(g, a * one)
    for a, g in zip(arrays, torch_clip(arrays, "global_norm", limit)):
        assert np.array_equal(g, a)
    c = np.asarray(limit, dtype)
    for a, g in zip(arrays, tf_clip(arrays, "norm", limit)):
        assert np.array_equal(g, (a * c) / c) and np.all(np.abs(g - a) <= EPS[dtype] * np.abs(a))


@given(gradient_lists(dtype="float64"), st.floats(0.05, 0.95))
def test_torch_clip_grad_norm_convention(drawn, delta):
    """In the band c - 1e-6 < n <= c and above it, clip_grad_norm_ == the oracle with torch_eps=1e-6; TF differs by 1e-6/n."""
    tf_clip, torch_clip = _impls()
    dtype, arrays = drawn
    n = _norm(arrays)
    assume(n > 1e-3)
    m = sum(a.size for a in arrays)
    tol = (m + 4) * EPS[dtype]
    for limit in (n + delta * TORCH_EPS, n * delta):  # in the band; clipped
        torch_out = torch_clip(arrays, "global_norm", limit)
        oracle = _oracle("global_norm", arrays, limit, torch_eps=TORCH_EPS)
        coef = min(limit / (n + TORCH_EPS), 1.0)
        assert coef < 1.0  # torch shrinks in the band, where TF's scale is c*fl(1/c) ~ 1
        for a, t_, o in zip(arrays, torch_out, oracle):
            assert np.allclose(t_, o, rtol=tol, atol=0) and np.allclose(t_, a * coef, rtol=tol, atol=0)
        tf_out = tf_clip(arrays, "global_norm", limit)
        for t_, f in zip(torch_out, tf_out):
            # torch / TF = max(n, c) / (n + 1e-6): 1e-6/n relative when clipped (P18)
            ratio = (limit / (n + TORCH_EPS)) / (limit / max(n, limit))
            assert np.allclose(t_, f * ratio, rtol=tol, atol=0)
        # not idempotent: a second call shrinks again by c / (||once|| + 1e-6), which is below 1
        # by (n + 1e-6 - c) * 1e-6 / (n * c) relative: in the band that can be below float64's
        # eps, and it rounds to 1 (thorough found n = 14.99, c = n + 0.94e-6: 2.8e-16)
        twice = torch_clip(torch_out, "global_norm", limit)
        coef2 = limit / (_norm(torch_out) + TORCH_EPS)
        assert coef2 <= 1.0
        if (n + TORCH_EPS - limit) * TORCH_EPS / (n * limit) > 4 * EPS[dtype]:
            assert coef2 < 1.0
        for once, tw in zip(torch_out, twice):
            assert np.allclose(tw, once * coef2, rtol=tol, atol=0)
