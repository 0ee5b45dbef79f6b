"""A TF1 port built again while its first build is open and unstepped (the conditioning run beside the port's
float64 run) shares that build's graph with a Session of its own (tf_impl/v1/_graph.py): it must step exactly
as a port built from scratch does, random ops included, and leave the first port's variables alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from parity.cases.data import iter_batches  # noqa: E402
from parity.cases.params import draw_parameters, perturbed  # noqa: E402
from parity.cases.registry import get_case  # noqa: E402


def _case():
    """seed 001's convnet, 3 steps, with TF1's own dropout (a random op: its state is the Session's)."""
    case = get_case("seed001_convnet")
    data = dict(case.data.args)
    data.pop("keep_prob", None), data.pop("mask_units", None)  # no fed mask: the port draws its dropout mask with tf.nn.dropout
    return dataclasses.replace(case, steps=3, data=dataclasses.replace(case.data, args=data))


def _run(port, params, batches):
    port.load(params)
    out = [port.parameters()]
    out += [port.step(b) for b in batches]
    return out


def _flat(records):
    """Every array of a list of (nested) records, in order, with its path."""
    flat = []

    def walk(path, x):
        if isinstance(x, dict):
            for k in sorted(x):
                walk(f"{path}/{k}", x[k])
        else:
            flat.append((path, np.asarray(x)))

    for i, r in enumerate(records):
        walk(str(i), r)
    return flat


def _same(a, b):
    fa, fb = _flat(a), _flat(b)
    assert [p for p, _ in fa] == [p for p, _ in fb]
    for (path, x), (_, y) in zip(fa, fb):
        assert x.dtype == y.dtype and x.shape == y.shape, path
        assert x.tobytes() == y.tobytes(), path  # bit for bit: the same graph, the same ops


def test_a_twin_shares_the_graph_and_steps_as_a_fresh_build():
    from tf_impl.v1.convnet import build

    case = _case()
    params = draw_parameters(case, "float64")
    rng = np.random.default_rng(7)
    moved = perturbed(params, rng)
    batches = [{k: np.asarray(v) for k, v in b.items()} for b in iter_batches(case, "float64")]

    first = build(case, "float64")
    assert first.masked is False  # the case does use the random op
    twin = build(case, "float64")  # built while `first` is open and has not stepped
    assert twin.graph is first.graph and twin.session is not first.session
    got_twin = _run(twin, moved, batches)
    got_first = _run(first, params, batches)  # the twin's steps moved none of first's variables
    first.close(), twin.close()

    fresh = build(case, "float64")
    assert fresh.graph is not first.graph  # first is closed: no twin
    want_twin = _run(fresh, moved, batches)
    fresh.close()
    fresh = build(case, "float64")
    want_first = _run(fresh, params, batches)
    fresh.close()
    _same(got_twin, want_twin)
    _same(got_first, want_first)
    # the twin's run is not the first's: the perturbed weights moved it (the comparison could fail)
    assert not np.array_equal(got_twin[-1]["parameters"]["wc1"], got_first[-1]["parameters"]["wc1"])


def test_no_twin_once_the_first_port_stepped_or_for_another_dtype_or_case():
    from tf_impl.v1.convnet import build

    case = _case()
    params = draw_parameters(case, "float64")
    first = build(case, "float64")
    other_dtype = build(case, "float32")
    other_case = build(dataclasses.replace(case, seed=case.seed + 1), "float64")
    assert other_dtype.graph is not first.graph and other_case.graph is not first.graph
    first.load(params)
    first.step(next(iter(iter_batches(case, "float64"))))
    late = build(case, "float64")
    assert late.graph is not first.graph  # a stepped port is no twin's source (its Python state moved on)
    for p in (first, other_dtype, other_case, late):
        p.close()
