"""parity.trace.summary: what a summary holds, computed without a float64 copy of the tensor."""

import zlib

import numpy as np
import pytest

from parity.trace.summary import CHUNK, moments, sample_indices, summarize


def _reference(x):
    """The first writers' summary: everything from a float64 copy (format 2 as first written)."""
    f = np.ascontiguousarray(x).reshape(-1).astype(np.float64)
    stats = np.array([np.sqrt(np.dot(f, f)), f.min(), f.max(), f.mean()])
    return stats, f[sample_indices(f.size)], zlib.crc32(np.ascontiguousarray(x).tobytes())


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64"])
@pytest.mark.parametrize("shape", [(17,), (3, CHUNK + 5), (40 * CHUNK + 1,)])
def test_summary_matches_the_float64_reference(dtype, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 0.5).astype(dtype)
    s = summarize(x)
    stats, samples, crc = _reference(x)
    assert s.checksum == crc and s.dtype == dtype and s.shape == shape
    np.testing.assert_array_equal(s.samples, samples)  # elements: exact in float64
    np.testing.assert_array_equal(s.stats[1:3], stats[1:3])  # min, max: elements, exact
    # norm and mean: both sums in float64, only the order of the additions differs (pairwise
    # within CHUNK, then chunk by chunk, vs BLAS's dot and numpy's pairwise sum over the whole):
    # a sum of n positive terms in such orders is within ~(log2 CHUNK + n / CHUNK) 2^-53 relative
    # each, 6e-15 at 1.3M elements (measured 1.1e-14 between the two): 1e-13 bounds it.
    np.testing.assert_allclose(s.stats[[0, 3]], stats[[0, 3]], rtol=1e-13, atol=0)


def test_layout_does_not_change_the_summary():
    # A transposed view (a torch kernel in the canonical layout) summarizes as its C-order copy:
    # same checksum, same samples, same statistics (up to the float64 summation order).
    x = np.random.default_rng(1).standard_normal((300, 200)).astype(np.float32)
    a, b = summarize(np.ascontiguousarray(x.T)), summarize(x.T)
    assert a.checksum == b.checksum
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.stats, b.stats)


def test_nan_and_inf_propagate():
    x = np.ones(CHUNK + 100, dtype=np.float32)
    x[CHUNK + 3] = np.nan
    s = summarize(x)
    assert np.isnan(s.stats).all()
    y = np.ones(100, dtype=np.float32)
    y[5] = np.inf
    assert summarize(y).stats[0] == np.inf and summarize(y).stats[2] == np.inf


def test_moments_of_a_float32_tensor_accumulate_in_float64():
    # 2^24 + 1 is not a float32 sum: a float32 accumulator would lose the ones.
    x = np.ones(3 * CHUNK, dtype=np.float32)
    total, squares, lo, hi = moments(x)
    assert (total, squares, lo, hi) == (3.0 * CHUNK, 3.0 * CHUNK, 1.0, 1.0)
    big = np.full(CHUNK + 1, 4096.0, dtype=np.float32)  # squares 2^24 each: float32 sums would round
    assert moments(big)[1] == (CHUNK + 1) * 4096.0**2


def test_sample_indices_are_cached_and_read_only():
    a = sample_indices(1000)
    assert a is sample_indices(1000) and not a.flags.writeable
    assert len(sample_indices(0)) == 0 and list(sample_indices(1)) == [0]


@pytest.mark.parametrize("offset", [2e-3, 1.0])  # mean^2 / var 4 (one pass) and 1e6 (two passes)
def test_health_figures_match_the_float64_reference(offset):
    from parity.trace.health import HealthTracker

    rng = np.random.default_rng(2)
    shape = (3, CHUNK // 2 + 7)  # more than one chunk
    w0 = rng.standard_normal(shape).astype(np.float32)
    tracker = HealthTracker({"w": w0, "b": np.zeros(4, np.float32)})
    prev, ref = w0.astype(np.float64), []
    for _ in range(3):
        g = (rng.standard_normal(shape) * 1e-3 + offset).astype(np.float32)  # a mean: the variance's cancellation
        w = (prev - 0.1 * g).astype(np.float32)
        tracker.add({"gradients": {"w": g.T.copy().T, "b": np.ones(4, np.float32)}, "parameters": {"w": w, "b": np.ones(4, np.float32)}})
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        ref.append((np.sqrt(np.sum(g64 * g64)), np.var(g64), np.sqrt(np.sum((w64 - prev) ** 2)) / np.sqrt(np.sum(prev * prev))))
        prev = w64
    layer = {h.name: h for h in tracker.result().layers}
    # float64 sums in another order than numpy's pairwise ones: relative ~1e-16 per term; the
    # one-pass variance adds ~1e-16 (1 + mean^2 / var) <= 1e-15 here: 1e-13 bounds both.
    np.testing.assert_allclose(layer["w"].grad_norm, [r[0] for r in ref], rtol=1e-13)
    np.testing.assert_allclose(layer["w"].grad_var, [r[1] for r in ref], rtol=1e-13)
    np.testing.assert_allclose(layer["w"].update_ratio, [r[2] for r in ref], rtol=1e-13)
    assert list(layer["b"].grad_var) == [0.0, 0.0, 0.0] and list(layer["b"].update_ratio) == [np.inf, 0.0, 0.0]


def test_a_summary_is_remembered_only_while_the_array_is_unchanged():
    x = np.random.default_rng(3).standard_normal(4096).astype(np.float32)
    a = summarize(x)
    assert summarize(x) is a  # the same array, unchanged: the remembered summary
    x[100] += 1.0  # changed in place: summarized again
    b = summarize(x)
    assert b is not a and b.checksum != a.checksum and b.samples is not a.samples
    assert summarize(x.copy()) is not b  # another array with the same bytes: computed, equal
    np.testing.assert_array_equal(summarize(x.copy()).stats, b.stats)
    with pytest.raises(ValueError):  # shared: read-only
        b.stats[0] = 0.0


def test_health_of_a_summarized_gradient_uses_its_statistics():
    from parity.trace.health import HealthTracker

    rng = np.random.default_rng(4)
    g = rng.standard_normal(5000)
    full, summ = HealthTracker(), HealthTracker()
    full.add({"gradients": {"w": g}})
    summ.add({"gradients": {"w": summarize(g.copy())}})
    a, b = full.result().layers[0], summ.result().layers[0]
    assert a.grad_norm[0] == b.grad_norm[0]  # both from the summary's norm
    # var: the same one-pass figure (mean^2 / var ~ 2e-4 here: exact to ~1e-16 relative)
    np.testing.assert_allclose(b.grad_var, [np.var(g)], rtol=1e-13)
    assert np.isnan(b.update_ratio[0])  # no parameters: no ratio
