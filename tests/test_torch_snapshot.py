"""The torch capture copies a recorded output once (torch_impl/capture/forward.py, ``Watch.snapshot``): the values
of ``canonical(out, prog._np(out))`` then ``canonical_activations`` as before, a copy (an in-place op after it does
not reach it, a channel dimension of 1 included), and a 4-D output already channel-last in memory, so that
``canonical_activations`` takes it without another copy."""

from __future__ import annotations

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_impl.capture.forward import Watch, canonical_activations  # noqa: E402


def _watch():
    return Watch(types.SimpleNamespace(_leaves=[]), {})


def _before(w, out):
    """What the capture recorded before: a copy, then the canonical layout."""
    arr = out.detach().numpy().copy()
    return canonical_activations({"k": w.canonical(out, arr)})["k"]


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 1, 4, 5), (1, 3, 1, 1), (3, 7), (4,), ()])
def test_a_snapshot_is_a_copy_with_the_values_recorded_before(shape):
    w = _watch()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    y = x * 1.0  # a recorded output (not a leaf)
    want = _before(w, y)
    got = w.snapshot(y)
    with torch.no_grad():
        y.mul_(0.0)  # an in-place op after recording (ReLU(inplace=True)): the record keeps the values it had
    out = canonical_activations({"k": got})["k"]
    assert out.shape == want.shape and out.dtype == want.dtype and np.array_equal(out, want)
    assert out.flags.c_contiguous
    if len(shape) == 4:
        assert np.shares_memory(out, got)  # taken as it is: no second copy


def test_a_flattened_chw_output_is_reordered_in_the_one_copy():
    w = _watch()
    x = torch.randn(2, 3 * 4 * 5, dtype=torch.float64)
    w.tag(x, ("flat", "chw", (3, 4, 5)))
    want = _before(w, x)
    got = w.snapshot(x)
    x.zero_()
    assert np.array_equal(got, want) and got.flags.c_contiguous and got.shape == (2, 60)
