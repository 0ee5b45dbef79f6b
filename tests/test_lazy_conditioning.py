"""The conditioning run only where it can matter (issue 21): a case runs without it, and again from the start with it
when a float32 tensor's envelope could depend on it (parity/comparison/envelope.py ``needs_conditioning``,
parity/run/runner.py ``_complete``). Every result must be the one a run with it from the start gives."""

import dataclasses
import math

import pytest
from hypothesis import given, strategies as st

from parity.comparison.envelope import (COND_CAP, LATER, PORT_CAP, NOT_YET, ConditioningNeeded, envelope,
                                        needs_conditioning)

from tests.test_envelope import THOROUGH_409

_FLOATS = st.one_of(st.floats(min_value=0.0, max_value=1e3), st.sampled_from([0.0, math.inf, math.nan, 5e-324]))


def _same(x, y) -> bool:
    return (x is None and y is None) or x == y or (x != x and y != y)


@given(model=_FLOATS, da=st.one_of(st.none(), _FLOATS), db=st.one_of(st.none(), _FLOATS), cond=_FLOATS)
def test_where_no_conditioning_is_needed_the_envelope_is_the_same_whatever_cond_is(model, da, db, cond):
    if not needs_conditioning(model, da, db):
        assert _same(envelope(model, da, db, cond), envelope(model, da, db, None))
        assert _same(envelope(model, da, db, cond), envelope(model, da, db, 0.0))


@given(model=st.floats(min_value=1e-9, max_value=1.0), da=st.floats(min_value=0.0, max_value=1.0),
       factor=st.floats(min_value=0.0, max_value=2.0), cond=st.floats(min_value=0.0, max_value=1.0))
def test_the_envelope_is_cond_free_exactly_up_to_the_cap(model, da, factor, cond):
    # the port's drift drawn around its cap without cond: up to it no cond changes the envelope; beyond it, a cond
    # large enough does, and needs_conditioning says so
    db = factor * PORT_CAP * max(model, da)
    if needs_conditioning(model, da, db):
        assert envelope(model, da, db, db) >= envelope(model, da, db)
        if factor > 1.01:  # (an ulp beyond the cap may round to the same sum)
            assert envelope(model, da, db, db) > envelope(model, da, db)
    else:
        assert envelope(model, da, db, cond) == envelope(model, da, db)


def test_a_port_drifting_beyond_the_cap_needs_it_and_the_cap_is_where_it_starts():
    # the thorough profile's cancelling bias gradient (tests/test_envelope.py, measured): TF1 drifts 54x the model
    model, da, db, cond = 4.77e-6, 1.37e-5, 2.56e-4, 3.38e-5
    assert needs_conditioning(model, da, db)
    assert envelope(model, da, db, cond) > envelope(model, da, db)  # it does change the envelope there
    cap = PORT_CAP * max(model, da)
    assert not needs_conditioning(model, da, cap) and needs_conditioning(model, da, math.nextafter(cap, 1.0))
    # at the cap itself, cond does not move it (any cond, even one over the cap)
    assert envelope(model, da, cap, 10 * cap / COND_CAP) == envelope(model, da, cap)


def test_not_yet_is_an_empty_mapping_nobody_can_fill():
    assert NOT_YET.get(("gradients", "w")) is LATER and len(NOT_YET) == 0
    assert envelope(1e-6, 1e-6, 2e-6, LATER) == envelope(1e-6, 1e-6, 2e-6)  # within the cap: computed without it
    with pytest.raises(ConditioningNeeded):
        envelope(1e-6, 1e-6, 1.0, LATER)
    with pytest.raises(TypeError):
        NOT_YET[("gradients", "w")] = 1.0


def _figures(result):
    """Every comparison's verdict and worst tensors, whole (frozen dataclasses: equal when every number is)."""
    return [(c.pair, c.dtype, c.ok, c.first, sorted((k, dataclasses.astuple(d)) for k, d in c.worst.items()))
            for c in result.comparisons]


class _Count:
    """Counts the conditioning runs opened (``open_conditioning`` as the lockstep calls it), and how many of the
    lockstep runs made so far are still alive each time (``alive``: a first attempt must be freed by then)."""

    def __init__(self, monkeypatch):
        import weakref

        import parity.run.lockstep as lockstep

        self.n, self.alive, real, made = 0, [], lockstep.open_conditioning, []
        init = lockstep.Lockstep.__init__

        def tracked(run, *args, **kw):
            made.append(weakref.ref(run))
            init(run, *args, **kw)

        def counted(*args, **kw):
            self.n += 1
            self.alive.append(sum(r() is not None for r in made))
            return real(*args, **kw)

        monkeypatch.setattr(lockstep.Lockstep, "__init__", tracked)
        monkeypatch.setattr(lockstep, "open_conditioning", counted)


class _Observer:  # an observer makes a run eager (it cannot be taken back): the run with the conditioning run throughout
    def start(self, *a):
        pass

    def step(self, *a):
        pass

    def finish(self, *a):
        pass


class _Restartable(_Observer):  # one that can be told the run starts over: the run stays lazy
    def __init__(self):
        self.restarts, self.steps = 0, 0

    def step(self, *a):
        self.steps += 1

    def restart(self):
        self.restarts, self.steps = self.restarts + 1, 0


# a tame configuration of the same net: no tensor cancels, every port's drift within the caps
TAME = dict(THOROUGH_409, activation="tanh", init_scale=0.5, data_scale=1.0, steps=3,
             optimizer={"name": "sgd", "lr": 0.1})


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("config,needed", [(THOROUGH_409, True), (TAME, False)], ids=["cancelling", "tame"])
def test_a_lazy_run_equals_the_run_with_the_conditioning_run_throughout(monkeypatch, config, needed):
    from parity.run.runner import run_case
    from parity.strategies import dense_case

    case = dense_case(config, ports=("numpy", "tf1", "tf2", "torch"))
    count = _Count(monkeypatch)
    seen = _Restartable()
    lazy = run_case(case, dtypes=["float64", "float32"], pairs="reference", observers=[seen])
    opened, alive, count.n = count.n, list(count.alive), 0
    # the run again with it holds nothing of its first attempt (its windows, comparisons, health: freed first)
    assert alive == [1] * opened, alive
    eager = run_case(case, dtypes=["float64", "float32"], pairs="reference", observers=[_Observer()])
    assert count.n == 1  # the eager run opens it
    assert _figures(lazy) == _figures(eager)
    assert all(c.ok for c in lazy.comparisons)  # (with the conditioning run: rounding; test_envelope.py)
    # the cancelling bias gradient (TF1's float32 drift 54x the model bound) needs it at step 0: it joins the run
    # then (opened once, nothing run again); the tame net never opens it
    assert opened == (1 if needed else 0)
    assert seen.restarts == 0 and seen.steps == config["steps"] * 2 * 4  # every step of every run, once


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("ports", [("tf1", "tf2", "torch", "numpy"), ("tf2", "torch"), ("torch", "tf1")],
                         ids=["tf1", "tf2", "torch"])
def test_a_conditioning_run_joining_at_step_0_equals_one_there_from_the_start(monkeypatch, ports):
    # each framework's reference: the conditioning run opened after step 0 of the others (lockstep's check forced
    # to find it needed), in the same worker, gives the numbers of one opened with them
    import parity.run.lockstep as lockstep
    from parity.run.runner import run_case
    from parity.strategies import dense_case

    case = dense_case(TAME, ports=ports)
    count = _Count(monkeypatch)
    monkeypatch.setattr(lockstep, "needs_conditioning", lambda *a: True)
    seen = _Restartable()
    joined = run_case(case, dtypes=["float64", "float32"], workers=True, observers=[seen])
    assert count.n == 1 and seen.restarts == 0
    eager = run_case(case, dtypes=["float64", "float32"], workers=True, observers=[_Observer()])
    assert count.n == 2
    assert _figures(joined) == _figures(eager)


@pytest.mark.tf
@pytest.mark.torch
def test_a_run_needing_it_after_step_0_runs_again_with_it(monkeypatch):
    # the comparison of step 1 forced to need it (step 0's check found nothing): the run starts over with it, its
    # observer told so, and reports what a run with it throughout reports
    import parity.comparison.envelope as envelope_module
    from parity.run.runner import run_case
    from parity.strategies import dense_case

    case = dense_case(TAME, ports=("tf1", "torch"))
    count, seen = _Count(monkeypatch), _Restartable()
    real = envelope_module.needs_conditioning
    monkeypatch.setattr(envelope_module, "needs_conditioning",
                        lambda *a: real(*a) or (seen.restarts == 0 and seen.steps > 2 * 2))  # from step 1 on
    again = run_case(case, dtypes=["float64", "float32"], workers=True, observers=[seen])
    assert count.n == 1 and seen.restarts == 1 and seen.steps == TAME["steps"] * 2 * 2
    assert count.alive == [1]  # the first attempt freed before the second opened it
    eager = run_case(case, dtypes=["float64", "float32"], workers=True, observers=[_Observer()])
    assert _figures(again) == _figures(eager)


def test_the_diff_progress_bar_starts_over():
    from parity.cli.diff import StepCounter
    from parity.report.terminal import Progress

    with Progress(4, "steps", enabled=True) as bar:
        counter = StepCounter(bar)
        counter.start("c", "ref", "float64", {})
        counter.step("c", "ref", "float64", {})
        counter.step("c", "port", "float64", {})  # (the reference's steps only)
        assert bar._progress.tasks[0].completed == 1
        counter.restart()
        assert bar._progress.tasks[0].completed == 0 and bar._progress.tasks[0].total == 4
        counter.start("c", "ref", "float64", {})
        counter.step("c", "ref", "float64", {})
        assert counter.steps == {"float64": 1} and bar._progress.tasks[0].completed == 1


@pytest.mark.tf
@pytest.mark.torch
def test_a_comparison_told_not_yet_raises_only_where_the_envelope_could_change():
    from parity.comparison.comparator import Comparator

    import numpy as np

    manifest = {"port": "a", "dtype": "float32"}
    cmp = Comparator(dict(manifest), {"port": "b", "dtype": "float32"})
    x = np.ones(4, np.float32)
    step = {"gradients": {"w": x}}
    key = ("gradients", "w")
    cmp.add(step, {"gradients": {"w": x}}, {key: 1e-7}, {key: 1e-7}, NOT_YET)  # within the cap: compared
    with pytest.raises(ConditioningNeeded):
        cmp.add(step, {"gradients": {"w": x}}, {key: 1e-7}, {key: 1.0}, NOT_YET)  # 1.0 over any model bound


@pytest.mark.tf
@pytest.mark.torch
def test_a_diff_that_finds_it_needed_runs_again_in_its_workers_and_reports_as_a_run_with_it(monkeypatch, tmp_path):
    # parity diff (examples/seed002, TF1 MLP against its torch port, 3 steps, each program in its workers): lazy,
    # forced to find the conditioning run needed at its 16th float32 tensor-step, eager (its progress
    # counter unable to start over), and lazy as it is (nothing needs it there): one report, number for number
    import json
    import os

    import parity.comparison.envelope as envelope_module
    from parity.cli.diff import StepCounter
    from parity.cli.main import main

    from tests.test_diff_workers import EXAMPLES, _numbers

    monkeypatch.setenv("PARITY_WORKERS", "1")
    files = [os.path.join(EXAMPLES, "seed002", f) for f in ("tf1_mlp.py", "torch_mlp.py")]
    real = envelope_module.needs_conditioning

    def run(name):
        path = tmp_path / f"{name}.json"
        assert main(["diff", *files, "--steps", "3", "--quiet-mapping", "--json", str(path)]) == 0
        return _numbers(json.loads(path.read_text()))

    count = _Count(monkeypatch)
    plain = run("lazy")
    assert count.n == 0  # nothing needed it
    calls = []

    def forced(model, da, db):  # the 16th float32 tensor-step compared says it needs the run
        calls.append(1)
        return real(model, da, db) or len(calls) == 2 * 8

    monkeypatch.setattr(envelope_module, "needs_conditioning", forced)
    rerun = run("rerun")
    assert count.n == 1 and len(calls) >= 2 * 8  # the lazy run stopped, the second ran with it
    monkeypatch.setattr(envelope_module, "needs_conditioning", real)
    monkeypatch.delattr(StepCounter, "restart")  # a run that cannot be taken back: eager
    count.n = 0
    eager = run("eager")
    assert count.n == 1
    assert plain == rerun == eager


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("ports", [("tf1", "tf2"), ("tf2", "tf1")], ids=["tf1", "tf2"])
def test_the_conditioning_run_leaves_a_cached_dense_reference_alone(ports):
    # The TF dense ports (the property tests' and drawn cases') cache one graph or model per structure, its variables
    # shared by the cases run one after another. The conditioning run is the reference's structure in float64 once
    # more, open beside the reference's own float64 run: it loaded its perturbed weights into the same variables and
    # stepped them too (found in session 8: tf1 vs tf2 float64 SEMANTIC, 2.3e-9 at step 0, 4e-2 at step 1). An open
    # port now holds its cached model; a second one builds its own.
    from parity.run.runner import run_case
    from parity.strategies import dense_case

    r = run_case(dense_case(TAME, ports=ports), dtypes=["float64", "float32"], observers=[_Observer()])  # (eager)
    assert [(c.pair, c.dtype, c.ok) for c in r.comparisons] == [(f"{ports[0]} vs {ports[1]}", d, True)
                                                                for d in ("float64", "float32")]
