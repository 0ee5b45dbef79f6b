"""torch_impl.trace.stats: summaries computed where a torch tensor lives give the host path's summary."""

from __future__ import annotations

import numpy as np
import pytest

from parity.comparison.records import diff_summaries
from parity.trace.summary import sample_indices, summarize

pytestmark = [pytest.mark.torch]

U = 2.0**-53  # float64's unit roundoff


def _tensors():
    import torch

    rng = np.random.default_rng(7)
    return {
        "w32": torch.tensor(rng.normal(size=(300, 70)), dtype=torch.float32),
        "w64": torch.tensor(rng.normal(size=(5000,)) * 1e3 + 5.0, dtype=torch.float64),
        "t": torch.tensor(rng.normal(size=(40, 30)), dtype=torch.float32).t(),  # not contiguous
        "ids": torch.tensor(rng.integers(0, 9, size=(77,)), dtype=torch.int64),
        "odd": torch.tensor(rng.integers(0, 9, size=(33,)), dtype=torch.uint8),  # 33 bytes: hashed byte-wise
        "empty": torch.zeros((0, 3)),
    }


def test_cpu_tensors_take_the_host_path_bit_for_bit():
    from torch_impl.trace.stats import summarize_step

    ts = _tensors()
    got = summarize_step(ts)
    for name, x in ts.items():
        want = summarize(x.contiguous().numpy())
        s = got[name]
        assert (s.shape, s.dtype, s.checksum) == (want.shape, want.dtype, want.checksum), name
        assert np.array_equal(s.stats, want.stats, equal_nan=True) and np.array_equal(s.samples, want.samples), name


def test_device_path_gives_the_host_summary():
    """The device path (forced here on CPU tensors): min, max and samples exactly; the norm and the mean to the
    rounding of a float64 sum in another order."""
    from torch_impl.trace.stats import summarize_step

    ts = _tensors()
    dev = summarize_step(ts, on_device=True)
    for name, x in ts.items():
        arr = x.contiguous().numpy()
        want, s = summarize(arr), dev[name]
        assert (s.shape, s.dtype) == (want.shape, want.dtype), name
        assert np.array_equal(s.stats[1:3], want.stats[1:3], equal_nan=True), name  # elements: exact
        assert np.array_equal(s.samples, want.samples), name  # the same indices (sample_indices), exact
        if arr.size == 0:
            continue
        n = arr.size
        # Two float64 sums of the same n terms in different orders each carry at most (n - 1) u relative error
        # of the sum of the terms' magnitudes (recursive summation's bound; pairwise/tree sums are tighter):
        # they differ by at most 2 n u of it. The norm's sum has positive terms: relative 2 n u (sqrt halves it).
        assert abs(s.stats[0] - want.stats[0]) <= 2 * n * U * want.stats[0], name
        mag = float(np.abs(arr.astype(np.float64)).mean())
        assert abs(s.stats[3] - want.stats[3]) <= 2 * n * U * mag, name
        assert s.checksum < 0 <= want.checksum  # a device hash never equals a CRC-32


def test_device_hash_tells_identical_bytes_from_different():
    import torch

    from torch_impl.trace.stats import summarize_step

    x = torch.linspace(-1, 1, 4099, dtype=torch.float32)
    y = x.clone()
    y[1234] = torch.nextafter(y[1234], torch.tensor(2.0))  # one ulp, one element
    a, b, c = (summarize_step({"x": v}, on_device=True)["x"] for v in (x, x.clone(), y))
    assert a.checksum == b.checksum and a.checksum != c.checksum
    assert diff_summaries(a, b)[0] == 0.0  # identical bytes: identical
    # different bytes are compared by their statistics: the sampled element 1234 is not necessarily sampled,
    # so only a lower bound: never more than the true difference
    assert diff_summaries(a, c)[0] <= float((x - y).abs().max())


def test_nonfinite_propagates_as_on_the_host():
    import torch

    from torch_impl.trace.stats import summarize_step

    x = torch.ones(100, dtype=torch.float32)
    x[50] = float("nan")
    s = summarize_step({"x": x}, on_device=True)["x"]
    want = summarize(x.numpy())
    assert np.isnan(s.stats).all() and np.isnan(want.stats).all()
    assert np.array_equal(s.samples, want.samples, equal_nan=True)
    assert len(s.samples) == len(sample_indices(100))
