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


def _ports_with_slots():
    """(case, build) of TF1 ports whose Sessions hold variables a load does not assign: Adam's slots and beta
    powers (a random op in the graph too), momentum slots with global_step, EMA shadows loaded with their
    variables."""
    from tf_impl.v1 import convnet, minimize, mlp

    return [(_case(), convnet.build), (get_case("seed002_max_norm"), mlp.build),
            (get_case("seed004_global_step_ema"), minimize.build)]


@pytest.mark.parametrize("which", range(3))
def test_the_first_load_initializes_the_rest_in_its_run_as_global_variables_initializer_would(which):
    case, build = _ports_with_slots()[which]
    case = dataclasses.replace(case, steps=3)
    params = draw_parameters(case, "float64")
    batches = list(iter_batches(case, "float64"))
    merged = build(case, "float64")
    assert merged._init_rest is not None  # these graphs take the one-run load
    got = _run(merged, params, batches)
    merged.close()
    old = build(case, "float64")  # the first port is closed: a build of its own
    old.session  # any use of the Session before a load: global_variables_initializer, as before
    assert not old._uninitialized
    want = _run(old, params, batches)
    old.close()
    _same(got, want)


class _Shadowed:
    """A TF1 port whose unloaded variable starts from a loaded variable's value (``w.read_value() * 2``: TF1 guards
    the read, the initializer reads ``w``'s initial value where ``w`` is not initialized yet)."""

    @staticmethod
    def build(case, dtype):
        from tf_impl.v1._graph import GraphPort

        class Port(GraphPort):
            def define(self, tf, tf1):
                w = tf1.get_variable("w", shape=[3], dtype=tf.float64, initializer=tf1.random_normal_initializer())
                self.copy = tf1.Variable(w.read_value() * 2.0, name="copy")
                self.variables = {"w": w}
                self.after = {"parameters": {"w": w}, "state": {"copy": self.copy}}

        return Port(case, dtype)


def test_an_initializer_that_reads_a_loaded_variable_keeps_its_own_run():
    case = get_case("seed004_global_step_ema")
    port = _Shadowed.build(case, "float64")
    assert port._init_rest is None  # one run would race the assignment and the read
    port.load({"w": np.array([1.0, 2.0, 3.0])})
    np.testing.assert_array_equal(port.parameters()["w"], [1.0, 2.0, 3.0])
    copy = port.session.run(port.copy)
    assert not np.array_equal(copy, [2.0, 4.0, 6.0])  # w's initial draw doubled (the global initializer ran first)
    port.close()


def test_parameters_after_a_load_are_what_the_session_holds_until_it_is_used_again():
    from tf_impl.v1.convnet import build

    case = _case()
    params = draw_parameters(case, "float64")
    port = build(case, "float64")
    port.load(params)
    cached = port.parameters()
    assert port._loaded is not None
    cached["wc1"][...] = 0.0  # a copy: the next call is not changed by what a caller did to the last
    read = port.session.run(dict(port.variables))  # any use of the Session ends the cache
    assert port._loaded is None
    for name, value in port.parameters().items():
        assert value.tobytes() == read[name].tobytes() == np.asarray(params[name]).tobytes(), name
    port.close()
