"""The comparisons' shared work of issue 21 (item 6) gives the plain formulas' numbers bit for bit: a large float64
pair's |a - b| measured once and read again by the carried error (:mod:`parity.comparison.pairdiff`), a slot's
measure from the update's difference, the carried error added in place, the gain with one |.|, the small gains
remembered, the layer outputs' carried error per step, the health's ||cur - prev|| and ||cur|| in one reading, the
pairs compared stage by stage (:func:`parity.comparison.pairs.add_together`). Each is checked against the plain
formula (or the comparator with the sharing switched off), on zeros of both signs, ties, NaN and inf."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from parity.comparison import comparator as comparator_mod, pairdiff, propagate
from parity.comparison.batched import BATCH_MAX
from parity.comparison.comparator import Comparator, add_together
from parity.comparison.records import QUIET, TensorDiff, _diff_arrays, tensor_diff
from parity.trace import health
from test_speed_compare import _excess_before  # Propagation.excess's figures as it computed them


def _pair(rng, n, kind):
    a = rng.normal(size=n)
    b = a * (1 + 1e-9 * rng.normal(size=n))
    if kind == "ties":
        b[::7] = a[::7] + 0.5
        b[3::7] = a[3::7] - 0.5  # +0.5 and -0.5 differences: the first maximum is the one
    elif kind == "zeros":
        a[:], b[:] = 0.0, -0.0
    elif kind == "nan":
        a[n // 2] = np.nan
    elif kind == "inf":
        a[5] = b[5] = np.inf
    elif kind == "equal":
        b = a.copy()
    return a.reshape(-1, 8) if n % 8 == 0 else a, b.reshape(-1, 8) if n % 8 == 0 else b


KINDS = ["plain", "ties", "zeros", "nan", "inf", "equal"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [BATCH_MAX + 8, 3 * BATCH_MAX + 5])
def test_a_kept_measure_is_the_plain_measure_and_its_difference(kind, n):
    rng = np.random.default_rng(n + len(kind))
    a, b = _pair(rng, n, kind)
    with np.errstate(**QUIET):
        plain = _diff_arrays(a, b)
        got, kept = pairdiff.measure_keeping(a, b)
        again, flat = pairdiff.measure_from(a, b, np.abs(a - b))
    assert repr(got) == repr(plain) and repr(again) == repr(plain)  # (repr: a zero's sign counts)
    if plain[1]:  # the careful path: nothing kept
        assert kept is None and flat is None
        return
    err, first = kept
    assert err.tobytes() == np.abs(a - b).tobytes() and first == flat == int(np.argmax(np.abs(a - b)))


def test_a_step_measures_its_small_tensors_together_and_leaves_the_large_ones():
    from parity.comparison.batched import step_measures

    rng = np.random.default_rng(3)
    small, large = rng.normal(size=(4, 5)), rng.normal(size=BATCH_MAX + 1)
    sa = {"parameters": {"b": small, "w": large}}
    sb = {"parameters": {"b": small * 2, "w": large * 2}}
    with np.errstate(**QUIET):
        got = step_measures(sa, sb, ("parameters",))
    assert list(got) == [("parameters", "b")]  # (the large one: measured where it is compared, its |a - b| kept)


def test_other_pairs_are_measured_as_before_and_keep_nothing():
    rng = np.random.default_rng(1)
    a = rng.normal(size=5000)
    for x, y in [(a.astype(np.float32), a.astype(np.float32) * 2), (a, a.astype(np.float32)), (a[:1].reshape(()), a[1:2].reshape(())),
                 (np.arange(5000), np.arange(5000))]:
        with np.errstate(**QUIET):
            got, kept = pairdiff.measure_keeping(x, y)
        assert kept is None and repr(got) == repr(_diff_arrays(x, y))


@pytest.mark.parametrize("kind", ["plain", "ties", "zeros", "equal"])
@pytest.mark.parametrize("cover", [0.0, 0.5, 2.0, "all"])  # nothing carried, part of the difference, all of it
def test_the_excess_from_the_kept_difference_is_the_formula(kind, cover):
    rng = np.random.default_rng(7)
    a, b = _pair(rng, BATCH_MAX + 8, kind)
    if cover == "all":  # nothing beyond: the largest difference is reported (its first maximum)
        carried = (np.abs(a - b) * 2 + 1e-30).astype(np.float32)
    else:
        carried = (np.abs(a - b) * cover * rng.random(a.shape)).astype(np.float32)
    with np.errstate(**QUIET):
        m, kept = pairdiff.measure_keeping(a, b)
        raw = (m[0], False, a.shape, 0)
        got = propagate._beyond(raw, carried, a, b, kept)
        alone = propagate._beyond(raw, carried, a, b)
    if m[0][0] == 0.0:
        assert got is None and alone is None
        return
    assert repr(got) == repr(alone) == repr(_excess_before(carried, a, b))


def _run(rng, ports, steps, n_big):
    """Steps of several ports of one float64 model: a large kernel and its Adam slot m, a small bias, a layer
    output; rounding-sized differences, a zero gradient, and at step 3 a NaN in one port's output."""
    w0 = rng.normal(size=(n_big // 8, 8))
    runs = {p: [] for p in ports}
    params = {p: (w0.copy(), np.zeros(8)) for p in ports}
    for t in range(steps):
        g = rng.normal(size=w0.shape)
        g.reshape(-1)[::97] = 1e-290  # (rounding noise: one port computes it as 0, its gain there is 0)
        gb = rng.normal(size=8) * 1e-9  # (a bias gradient of rounding noise: the carried error grows)
        for k, p in enumerate(ports):
            noise = 1 + 1e-13 * (k + 1) * rng.normal(size=w0.shape)
            gp, gbp = g * noise, gb * (1 + 1e-12 * k)
            if k == 1:
                gp.reshape(-1)[::97] = 0.0
            w, bias = params[p]
            m = 0.1 * gp
            w, bias = w - 1e-3 * m, bias - 1e-3 * gbp
            params[p] = (w, bias)
            out = np.tanh(w[:16] + bias)
            if t == 3 and k == 2:
                out = out.copy()
                out[0, 0] = np.nan
            runs[p].append({"forward": {"dense": out}, "gradients": {"dense/kernel": gp, "dense/bias": gbp},
                            "parameters": {"dense/kernel": w, "dense/bias": bias},
                            "slots": {"dense/kernel/m": m, "dense/bias/m": 0.1 * gbp}})
    initial = {p: {"dense/kernel": w0, "dense/bias": np.zeros(8)} for p in ports}
    return runs, initial


def _compare(runs, initial, ports, together):
    pairs = list(itertools.combinations(ports, 2))
    fired = []
    cmps = [Comparator({"case": "c", "port": pa, "dtype": "float64"}, {"case": "c", "port": pb, "dtype": "float64"},
                       keep="all", initial=(initial[pa], initial[pb]), on_divergence=lambda i, pair=(pa, pb): fired.append((pair, i)))
            for pa, pb in pairs]
    for t in range(len(runs[ports[0]])):
        jobs = [(c, runs[pa][t], runs[pb][t], None, None, None) for c, (pa, pb) in zip(cmps, pairs)]
        if together:
            add_together(jobs)
        else:
            for c, *args in jobs:
                c.add(*args)
    return [repr(c.finish()) for c in cmps], fired


def _gain_before(x, p, g):
    with np.errstate(all="ignore"):
        dx = np.abs(np.asarray(x, np.float64) - np.asarray(p, np.float64))
        return np.where(g != 0, dx / np.abs(np.asarray(g, np.float64)), 0.0)


def _update_before(self, var, xa, xb, prev, ga, gb, stage=None, key=None):
    """Propagation._update as it was: new arrays, nothing remembered, nothing handed on."""
    with np.errstate(all="ignore"):
        step = np.maximum(_gain_before(xa, prev[0], ga), _gain_before(xb, prev[1], gb))
        step = step * np.abs(np.asarray(ga, np.float64) - np.asarray(gb, np.float64))
        if step.size and not np.isfinite(step.max()):
            step[~np.isfinite(step)] = 0.0
        old = self.carried.get(var)
        if old is not None:
            step = step + old
    carried = self.carried[var] = step.astype(np.float32)
    return carried


def _plain(monkeypatch):
    """The comparator with its sharing switched off: every pair measured alone, nothing kept or handed on, the
    carried error and the outputs' share of it by the formulas as they were."""
    monkeypatch.setattr(comparator_mod, "measure_keeping", lambda a, b, keep=True: (_diff_arrays(a, b), None))
    monkeypatch.setattr(comparator_mod.Comparator, "_source_measured", lambda self, *args: None)
    monkeypatch.setattr(propagate.Propagation, "_update", _update_before)
    monkeypatch.setattr(propagate.Propagation, "output", lambda self, name: _output_before(self.carried, name))


def test_the_comparator_with_its_shared_work_is_the_comparator_without(monkeypatch):
    ports = ("a", "b", "c")
    runs, initial = _run(np.random.default_rng(11), ports, 6, BATCH_MAX + 800)
    shared = _compare(runs, initial, ports, together=True)
    alone = _compare(runs, initial, ports, together=False)
    _plain(monkeypatch)
    plain = _compare(runs, initial, ports, together=False)
    assert shared == alone == plain
    assert sorted(shared[1]) == [(("a", "c"), 3), (("b", "c"), 3)]  # (the planted NaN, found in its pairs only)
    assert "n_rounding=0," not in shared[0][0] and "first=None" in shared[0][0]  # (a and b: rounding, all steps)


def test_a_slot_measured_from_the_update_is_the_slot_measured_alone():
    rng = np.random.default_rng(4)
    runs, initial = _run(rng, ("a", "b"), 3, BATCH_MAX + 80)
    seen = []
    cmp = Comparator({"case": "c", "port": "a", "dtype": "float64"}, {"case": "c", "port": "b", "dtype": "float64"},
                     keep="all", initial=(initial["a"], initial["b"]))
    original = cmp._source_measured

    def spy(stage, name, xa, xb, diff):
        seen.append((stage, name))
        original(stage, name, xa, xb, diff)
        with np.errstate(**QUIET):
            assert repr(cmp._measured[(stage, name)]) == repr(_diff_arrays(xa, xb))

    cmp._prop.source_diff = spy
    for sa, sb in zip(runs["a"], runs["b"]):
        cmp.add(sa, sb)
    assert ("slots", "dense/kernel/m") in seen  # (the large slot: from the update's difference)


def test_the_carried_error_added_in_place_is_the_rounded_sum():
    rng = np.random.default_rng(2)
    step = np.abs(rng.normal(size=5000)) * 10.0 ** rng.integers(-30, 30, 5000)
    old = (np.abs(rng.normal(size=5000)) * 10.0 ** rng.integers(-30, 30, 5000)).astype(np.float32)
    old[:3] = [np.float32(3e38), 0.0, np.float32(1e-45)]
    step[0] = 1e38  # (overflows float32: inf, as the cast gives)
    with np.errstate(all="ignore"):
        want = (step + old).astype(np.float32)
        got = np.add(step, old, out=old, casting="unsafe")
    assert got is old and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [3, 2000])
def test_the_gain_is_the_formula_and_the_small_ones_are_remembered(dtype, n):
    rng = np.random.default_rng(n)
    x, p, g = (rng.normal(size=n).astype(dtype) for _ in range(3))
    g[::5], x[1::5], g[2] = 0.0, p[1::5], -0.0
    with np.errstate(all="ignore"):
        dx = np.abs(x.astype(np.float64) - p.astype(np.float64))
        want = np.where(g != 0, dx / np.abs(g.astype(np.float64)), 0.0)
    first, again = propagate._gain(x, p, g), propagate._gain(x, p, g)
    assert first.tobytes() == want.tobytes() and again is first and not first.flags.writeable
    assert propagate._gain(x.copy(), p, g) is not first  # (another array: taken again)


def _output_before(carried, name):
    layers = {propagate._layer(v) for v in carried}
    mine = propagate.owner_of(name, layers - {""})
    if mine is None:
        return 0.0
    return float(sum(np.max(c) for v, c in carried.items() if propagate._layer(v) == mine and np.ndim(c) == 1 and np.size(c)))


def test_a_layer_outputs_carried_error_is_its_biases_after_each_update():
    rng = np.random.default_rng(9)
    prop = propagate.Propagation()
    names = ["g/h1/conv", "g/h1/conv#2", "discriminator_1/d0/BiasAdd", "g/h2", "nowhere", "x"]
    carried = {}
    for step, var in enumerate(["g/h1/bias", "g/h1/b2", "g/h1/kernel", "discriminator/d0/bias", "shift", "g/h2/bias"]):
        shape = (4, 3) if var.endswith("kernel") else () if var == "shift" else (3,)
        carried[var] = (np.abs(rng.normal(size=shape)) * 1e-7).astype(np.float32)
        prop.carried = dict(carried)
        prop._bias = None  # (what an update does)
        for name in names:
            assert repr(prop.output(name)) == repr(_output_before(carried, name)), (step, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [0, 1, 1000, 3 * 32768 + 7])
def test_the_distance_and_the_norm_in_one_reading_are_the_two_sums(dtype, n):
    rng = np.random.default_rng(n)
    cur, prev = (rng.normal(size=n) * 1e3).astype(dtype), (rng.normal(size=n) * 1e3).astype(dtype)
    if n > 10:
        cur[3], prev[7] = np.nan, np.inf
    delta, norm = health._distance(cur, prev, True)
    assert repr((delta, norm)) == repr((health._distance(cur, prev), health._norm(cur, False)))


def test_a_fast_tensor_diff_is_the_dataclass():
    values = (3, "parameters", "w", (2, 3), 1e-9, -0.0, (1, 2), 0.5, float("nan"), 2.0, 1e-10, None, 3.5, False, None, 2)
    a, b = TensorDiff(*values), tensor_diff(*values)
    assert repr(a) == repr(b) and hash(a) == hash(b) and a.verdict == b.verdict and a.units == b.units
    assert type(b) is TensorDiff and list(vars(a)) == list(vars(b))
