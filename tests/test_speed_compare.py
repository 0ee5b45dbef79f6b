"""The harness's comparisons with their shared work (issue 21, item 6): each run's update gain and each array's
extremes taken once per step and remembered across the pairs, the carried error updated in place, the health
sums taken without a summary. Every figure must be the one the straightforward formulas give, bit for bit: these
tests hold the code to the formulas as parity computed them before (written out here), on planted zeros of
both signs, ties, zero gradients, NaN and inf, float32 and float64, 0-d to multi-chunk tensors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from parity.comparison import extremes, propagate
from parity.comparison.propagate import Propagation
from parity.comparison.records import QUIET, _diff_arrays
from parity.trace import summary
from parity.trace.health import HealthTracker


def _carried_before(carried, xa, xb, pa, pb, ga, gb):
    """One update's carried error, as propagate.Propagation.parameter computed it one pair at a time."""
    with np.errstate(all="ignore"):
        ga, gb = np.asarray(ga, np.float64), np.asarray(gb, np.float64)
        gain = np.zeros(np.shape(xa))
        for x, p, g in ((xa, pa, ga), (xb, pb, gb)):
            move = np.abs(np.asarray(x, np.float64) - np.asarray(p, np.float64))
            gain = np.maximum(gain, np.where(g != 0, move / np.abs(g), 0.0))
        step = np.abs(ga - gb) * gain
    step = np.where(np.isfinite(step), step, 0.0)
    return (carried + step).astype(np.float32)


def _excess_before(carried, xa, xb):
    """Propagation.excess's figures, as it computed them (whole float64 temporaries)."""
    with np.errstate(all="ignore"):
        a, b = np.asarray(xa, np.float64), np.asarray(xb, np.float64)
        err = np.abs(a - b)
        beyond = np.maximum(err - carried, 0.0)
    k = int(np.argmax(beyond)) if beyond.max() > 0 else int(np.argmax(err))
    where = np.unravel_index(k, err.shape) if err.ndim else ()
    return float(err.flat[k]), tuple(int(x) for x in where), float(a.flat[k]), float(b.flat[k]), float(beyond.flat[k])


def _values(rng, shape, dtype, step):
    """A port's parameter or gradient: rounding-sized differences between ports, planted zeros (+0 and -0),
    ties, and at step 3 one inf and one NaN."""
    x = rng.normal(size=shape)
    flat = x.reshape(-1)
    if flat.size > 4:
        flat[:: 5] = 0.0
        flat[1:: 7] = -0.0
        flat[2:: 11] = 0.5
    return np.asarray(x.astype(dtype))  # (a 0-d array stays an array)


def _near(rng, x, scale=1e-6):
    y = (x.astype(np.float64) * (1 + scale * rng.normal(size=x.shape))).astype(x.dtype)
    flat = y.reshape(-1)
    if flat.size > 6:
        flat[3:: 13] = x.reshape(-1)[3:: 13]  # some elements identical
    return np.asarray(y)


@pytest.mark.parametrize("memo_bytes", [propagate.GAIN_MEMO_BYTES, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(), (7,), (40, 60)])
def test_the_carried_error_and_its_excess_are_the_formulas_in_every_pair(monkeypatch, memo_bytes, dtype, shape):
    # three ports, three pairs, each with its own Propagation: the gains shared between the pairs (a memo of
    # 1 byte forgets each at once) must give every pair the numbers its own formula gives, step after step
    monkeypatch.setattr(propagate, "GAIN_MEMO_BYTES", memo_bytes)
    # empty memos: an earlier test's arrays may still live (their gains remembered), and a small parameter's gain
    # is remembered apart (propagate._SMALL): what this test counts is its own
    monkeypatch.setattr(propagate, "_GAINS", {})
    monkeypatch.setattr(propagate, "_GAIN_BYTES", [0])
    monkeypatch.setattr(propagate, "_SMALL", {})
    rng = np.random.default_rng(sum(shape) + (dtype == np.float32))
    base = _values(rng, shape, dtype, 0)
    ports = "abc"
    params = {p: _near(rng, base) for p in ports}
    props = {pair: Propagation(({"w": params[pair[0]]}, {"w": params[pair[1]]})) for pair in itertools.combinations(ports, 2)}
    ref = {pair: np.zeros(shape, np.float32) for pair in props}
    checked = 0
    for step in range(5):
        g0 = _values(rng, shape, dtype, step)
        grads = {p: _near(rng, g0, 1e-3) for p in ports}
        if step == 2:
            grads["b"].reshape(-1)[0] = 0.0  # one run's gradient exactly zero where the others' is not
        new = {p: np.asarray((params[p].astype(np.float64) - 0.1 * grads[p]).astype(dtype)) for p in ports}
        if step == 3 and new["c"].size > 2:
            new["c"].reshape(-1)[1] = np.inf
            grads["a"].reshape(-1)[2] = np.nan
        for (pa, pb), prop in props.items():
            sa, sb = {"gradients": {"w": grads[pa]}}, {"gradients": {"w": grads[pb]}}
            prop.accept("gradients", "w", "rounding")
            with np.errstate(**QUIET):
                m, _ = _diff_arrays(new[pa], new[pb], remember=True)
            bad = int((~np.isfinite(new[pa])).sum() + (~np.isfinite(new[pb])).sum())
            got = prop.excess("parameters", "w", (m, False, shape, bad), new[pa], new[pb], sa, sb)
            ref[(pa, pb)] = _carried_before(ref[(pa, pb)], new[pa], new[pb], params[pa], params[pb], grads[pa], grads[pb])
            carried = np.asarray(prop.carried["w"])
            assert carried.dtype == np.float32 and carried.tobytes() == np.asarray(ref[(pa, pb)]).tobytes(), (step, pa, pb)
            if bad or m[0] == 0.0:
                assert got is None
                continue
            want = _excess_before(ref[(pa, pb)], new[pa], new[pb])
            assert repr(got) == repr(want), (step, pa, pb)  # (repr: a zero's sign counts)
            checked += 1
        params = new
    assert checked >= 8  # most pair-steps measured an excess (the others: the planted inf)
    if memo_bytes == 1:
        assert len(propagate._GAINS) <= 1


@pytest.mark.parametrize("make", [
    lambda r: (r.normal(size=3000), r.normal(size=3000).astype(np.float32)),  # the drift's mixed dtypes
    lambda r: (r.normal(size=3000).astype(np.float32), r.normal(size=3000).astype(np.float32)),
    lambda r: (np.zeros(2000), -np.zeros(2000)),  # zeros of both signs: the scale's sign as max() takes it
    lambda r: (-np.zeros(2000, np.float32), np.zeros(2000, np.float32)),
    lambda r: (np.full(2000, np.inf), r.normal(size=2000)),
    lambda r: (np.where(r.random(2000) < 0.01, np.nan, 1.0), np.ones(2000)),
    lambda r: (r.integers(0, 5, 2000), r.integers(0, 5, 2000)),
    lambda r: (r.integers(0, 5, 2000), r.normal(size=2000)),
    lambda r: (r.random(2000) < 0.5, r.random(2000) < 0.5),
    lambda r: (np.float64(2.5) * np.ones(()), np.ones((), np.float32)),
    lambda r: (r.normal(size=(50, 40)), r.normal(size=(50, 40))),
])
def test_remembered_extremes_give_the_same_measure(make):
    # the measure with each array's extremes remembered, asked twice (the second time from the memo), is the
    # measure taken afresh: every figure, a zero's sign and a NaN included
    rng = np.random.default_rng(5)
    a, b = make(rng)
    with np.errstate(**QUIET):
        plain = _diff_arrays(a, b)
        first, again = _diff_arrays(a, b, remember=True), _diff_arrays(a, b, remember=True)
    assert repr(first) == repr(plain) and repr(again) == repr(plain)
    if a.size >= extremes.EXTREMES_MIN and a.dtype.kind == "f" and not plain[1]:  # (taken where finite)
        assert id(a) in extremes._EXTREMES
    key = id(a)
    del a, first, again, plain
    assert key not in extremes._EXTREMES  # forgotten with the array


@pytest.mark.parametrize("n", [1, 1023, 1024, 70000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_health_sums_without_a_summary_are_the_summarys(n, dtype):
    rng = np.random.default_rng(n)
    x = (rng.normal(size=(n, 3)) * 1e3).astype(dtype)[:, 1]  # (not contiguous)
    summary._MEMO.clear()
    direct = summary.norm_mean(x, remember=False)
    assert id(x) not in summary._MEMO
    via = summary.norm_mean(x)
    assert np.array(direct).tobytes() == np.array(via).tobytes()


def test_a_tracker_that_does_not_remember_gives_the_same_series():
    rng = np.random.default_rng(3)
    initial = {"w": rng.normal(size=(40, 30)).astype(np.float32), "b": np.zeros(30)}
    trackers = HealthTracker(initial), HealthTracker(initial, remember=False)
    w, b = initial["w"], initial["b"]
    for _ in range(4):
        g = {"w": rng.normal(size=w.shape).astype(np.float32), "b": rng.normal(size=30) + 1e3}  # (b: two-pass variance)
        w, b = w - 0.1 * g["w"], b - 0.1 * g["b"]
        step = {"gradients": g, "parameters": {"w": w, "b": b}, "loss": {"loss": np.float64(rng.random())}}
        for t in trackers:
            t.add(step)
    (ha, hb) = (t.result() for t in trackers)
    for la, lb in zip(ha.layers, hb.layers):
        for f in ("grad_norm", "grad_var", "update_ratio"):
            assert getattr(la, f).tobytes() == getattr(lb, f).tobytes(), (la.name, f)
