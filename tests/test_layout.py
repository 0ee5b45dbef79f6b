"""parity.portkit.layout: the TF <-> torch conversions are exact inverses; SAME padding is TF's (numpy only)."""

import numpy as np
import pytest

from parity.portkit import layout


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_dense_roundtrip_and_meaning(rng):
    k = rng.normal(size=(5, 3))
    w = layout.dense_to_torch(k)
    assert w.shape == (3, 5)
    np.testing.assert_array_equal(layout.dense_from_torch(w), k)
    x = rng.normal(size=(2, 5))
    # x @ K (TF Dense) == x @ W.T (torch Linear): exact, the same products in the same order.
    np.testing.assert_array_equal(x @ k, x @ w.T)


def test_conv_roundtrip_and_axes(rng):
    k = rng.normal(size=(5, 3, 2, 4))  # HWIO, non-square so an H/W swap cannot hide
    w = layout.conv_to_torch(k)
    assert w.shape == (4, 2, 5, 3)  # OIHW
    np.testing.assert_array_equal(layout.conv_from_torch(w), k)
    assert w[3, 1, 4, 2] == k[4, 2, 1, 3]


def test_activation_roundtrip(rng):
    x = rng.normal(size=(2, 6, 7, 3))
    y = layout.nhwc_to_nchw(x)
    assert y.shape == (2, 3, 6, 7)
    np.testing.assert_array_equal(layout.nchw_to_nhwc(y), x)
    assert y[1, 2, 5, 6] == x[1, 5, 6, 2]


@pytest.mark.parametrize("hwc", [(7, 7, 64), (2, 3, 4), (1, 1, 5), (4, 4, 1)])
def test_flatten_permutation_maps_tf_rows_to_torch_rows(rng, hwc):
    h, w, c = hwc
    act = rng.normal(size=(3, h, w, c))
    kernel = rng.normal(size=(h * w * c, 6))
    flat_tf = act.reshape(3, -1)  # TF flattens NHWC: (h, w, c)
    flat_torch = layout.nhwc_to_nchw(act).reshape(3, -1)  # torch flattens NCHW: (c, h, w)
    perm = layout.flatten_permutation(h, w, c)
    assert sorted(perm.tolist()) == list(range(h * w * c))
    np.testing.assert_array_equal(flat_torch, flat_tf[:, perm])
    rows = layout.flatten_rows_to_torch(kernel, h, w, c)
    np.testing.assert_array_equal(layout.flatten_rows_from_torch(rows, h, w, c), kernel)
    # The permuted kernel multiplies the same pairs, so the sums agree to rounding only
    # (the summation order differs): 4 eps * sqrt(n) * max |term| sum is a loose-enough bound.
    n = h * w * c
    tol = 4 * np.finfo(float).eps * np.sqrt(n) * np.abs(flat_tf).max() * np.abs(kernel).max() * n
    np.testing.assert_allclose(flat_torch @ rows, flat_tf @ kernel, rtol=0, atol=tol)


@pytest.mark.parametrize("hwc", [(7, 7, 64), (2, 3, 4), (1, 1, 5), (4, 4, 1)])
def test_dense_from_torch_flattened_is_the_two_conversions_in_one(rng, hwc):
    h, w, c = hwc
    kernel = rng.normal(size=(h * w * c, 6))  # TF's fc1 kernel [in, out], rows in (h, w, c) order
    weight = layout.dense_to_torch(layout.flatten_rows_to_torch(kernel, h, w, c))  # torch's [out, in], (c, h, w)
    fused = layout.dense_from_torch_flattened(weight, h, w, c)
    # a permutation of the same numbers: bit for bit, a fresh C-contiguous array, not a view of the weight
    np.testing.assert_array_equal(fused, layout.flatten_rows_from_torch(layout.dense_from_torch(weight), h, w, c))
    np.testing.assert_array_equal(fused, kernel)
    assert fused.flags.c_contiguous and not np.shares_memory(fused, weight)
    fused[0, 0] += 1.0  # the cached inverse permutation is not the caller's to change, nor reached by this
    np.testing.assert_array_equal(layout.dense_from_torch_flattened(weight, h, w, c)[1:], kernel[1:])


def test_flatten_permutation_is_not_identity_when_spatial():
    # With H*W > 1 the orders differ (the silent P23 bug); with 1x1 they coincide.
    assert not np.array_equal(layout.flatten_permutation(7, 7, 64), np.arange(7 * 7 * 64))
    np.testing.assert_array_equal(layout.flatten_permutation(1, 1, 8), np.arange(8))


def _tf_same(size, k, s):
    # TensorFlow's SAME rule as its docs state it ("Notes on padding"), a different
    # formulation from parity.portkit.layout's: the total depends on size mod stride.
    total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "k,s,h,expected",
    [
        (3, 2, 6, (0, 1)),
        (3, 2, 7, (1, 1)),
        (5, 2, 28, (1, 2)),
        (5, 1, 28, (2, 2)),
        (2, 1, 6, (0, 1)),
        (4, 2, 8, (1, 1)),
        (2, 2, 28, (0, 0)),
        (2, 2, 7, (0, 1)),
        (1, 1, 5, (0, 0)),
        (3, 3, 10, (1, 1)),
    ],
)
def test_same_padding_table(k, s, h, expected):
    assert layout.same_padding(h, k, s) == expected
    assert _tf_same(h, k, s) == expected


@pytest.mark.parametrize("size", range(1, 20))
@pytest.mark.parametrize("k,s", [(1, 1), (2, 2), (3, 1), (3, 2), (5, 2), (4, 3)])
def test_same_padding_gives_ceil_output(size, k, s):
    before, after = layout.same_padding(size, k, s)
    assert 0 <= after - before <= 1  # the odd pixel goes after
    assert (size + before + after - k) // s + 1 == -(-size // s)
