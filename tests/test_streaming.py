"""Streaming runs: memory flat in the steps, windows around the first divergence, the port boundary,
the measured float32 envelope. Synthetic numpy ports (a linear least-squares model), no framework."""

from __future__ import annotations

import os
import sys
import tracemalloc
import types

import numpy as np
import pytest

from parity.cases.case import Case, Cost, Data, Init
from parity.comparison.comparator import ENVELOPE_FACTOR, PORT_CAP
from parity.errors import PortError
from parity.run.runner import run_case
from parity.trace.memory import OutsideWindow

N_IN, N_OUT, BATCH = 256, 128, 8


def _case(steps: int, **options) -> Case:
    return Case(
        name="synthetic_linear",
        module="synthetic",
        title="x W, squared error, SGD",
        ports=("numpy", "numpy:b"),
        params={"W": Init((N_IN, N_OUT), "random_normal", {"mean": 0.0, "stddev": 0.1})},
        data=Data("normal", {"key": "x", "shape": (BATCH, N_IN), "targets": {"key": "y", "shape": (BATCH, N_OUT)}}),
        steps=steps,
        options={"lr": 0.01, **options},
        cost=Cost(depth=1, reduction=N_IN),
    )


class _Port:
    """One SGD step of 0.5 |x W - y|^2 / batch; ``bug_at`` adds a wrong term from that step on."""

    def __init__(self, case, dtype, variant, behaviour):
        self.case, self.dtype, self.variant, self.behaviour = case, dtype, variant, behaviour
        self.t = 0

    def load(self, params):
        self.W = np.array(params["W"], dtype=self.dtype)

    def parameters(self):
        return {"W": self.W}

    def step(self, batch):
        x, y = batch["x"], batch["y"]
        z = x @ self.W
        loss = 0.5 * np.sum((z - y) ** 2) / len(x)
        g = x.T @ (z - y) / len(x)
        special = self.behaviour(self, g)
        if special is not None:  # (what the step returns instead,)
            return special[0]
        self.W -= self.case.option("lr") * g
        self.t += 1
        return {"forward": {"z": z}, "loss": {"loss": loss}, "gradients": {"W": g},
                "learning_rate": {"lr": np.float64(self.case.option("lr"))}, "parameters": {"W": self.W}}


def _module(behaviour=lambda port, g: None):
    mod = types.ModuleType("synthetic_port")
    mod.framework_info = lambda: {"version": "0", "device": "cpu"}
    mod.build = lambda case, dtype, variant: _Port(case, dtype, variant, behaviour)
    return mod


def _run(steps, behaviour=lambda port, g: None, **kw):
    """Run the plain port as ``numpy`` (the reference) and ``behaviour``'s as ``numpy:b``."""
    return run_case(_case(steps), modules={"numpy": _module(), "numpy:b": _module(behaviour)}, **kw)


def _bug_from(k):
    def behaviour(port, g):
        if port.t >= k:
            g += 1e-3 * np.sign(g)  # a wrong gradient from step k on
        return None

    return behaviour


def _peak(steps) -> int:
    tracemalloc.start()
    try:
        _run(steps, _bug_from(5), dtypes=("float64",))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_the_steps():
    _run(3, _bug_from(1), dtypes=("float64",))  # one-time costs (lazy imports, caches) out of the way
    small, large = _peak(50), _peak(500)
    # Each step's tensors (~0.8 MB over both ports) are compared and dropped; what stays per
    # step is its scalars (packed), one float per stage of the heatmap series and the health
    # series: well under 1 kB. So 450 more steps add < 1 kB each, and the peak stays within
    # 10% (the issue's target for a 50- vs 500-step run).
    assert (large - small) / 450 < 1024, (small, large)
    assert large <= 1.10 * small, (small, large)


def test_window_holds_the_steps_around_the_first_divergence():
    r = _run(40, _bug_from(10), dtypes=("float64",))
    (cmp,) = r.comparisons
    assert not cmp.ok and cmp.first_divergence.step == 10 and cmp.first_divergence.stage == "gradients"
    w = r.traces["float64"]["numpy:b"]
    assert w.kept_steps == [8, 9, 10, 11, 12, 37, 38, 39] and len(w.steps) == 40
    assert w.steps[9]["gradients"]["W"].shape == (N_IN, N_OUT)
    with pytest.raises(OutsideWindow):
        w.steps[20]["gradients"]["W"]
    assert [float(s["learning_rate"]["lr"]) for s in w.steps] == [0.01] * 40  # scalars: every step
    # the comparison keeps the diffs of the window steps and the worst of each tensor
    assert {d.step for d in cmp.diffs} >= {8, 9, 10, 11, 12}
    assert len(cmp.series["gradients"]) == 40 and cmp.series["gradients"][9] < 1 < cmp.series["gradients"][10]
    # health series: one value per step
    h = w.health
    assert len(h.loss) == 40 and [l.name for l in h.layers] == ["W"] and len(h.layers[0].grad_norm) == 40


def test_keep_all_keeps_every_step():
    r = _run(12, _bug_from(3), dtypes=("float64",), keep="all")
    w = r.traces["float64"]["numpy"]
    assert w.kept_steps == list(range(12))
    assert {d.step for d in r.comparisons[0].diffs} == set(range(12))


def test_release_drops_full_tensors():
    r = _run(12, _bug_from(3), dtypes=("float64",))
    r.release()
    w = r.traces["float64"]["numpy"]
    assert w.kept_steps == [] and float(w.steps[0]["learning_rate"]["lr"]) == 0.01


@pytest.mark.parametrize(
    "returned, message",
    [
        (None, "step 0 returned NoneType, expected a dict"),
        ({"loss": 1.5}, "stage 'loss' as a float, expected a dict of arrays"),
        ({"loss": {"loss": np.array([object()])}}, "dtype object, not an array of numbers"),
    ],
)
def test_wrong_types_are_one_line_protocol_errors(returned, message):
    r = _run(3, lambda port, g: (returned,), dtypes=("float64",))
    err = r.errors["float64"]["numpy:b"]
    assert message in str(err) and "\n" not in str(err)
    assert r.traces["float64"] == {"numpy": r.traces["float64"]["numpy"]} and not r.comparisons


def test_sys_exit_in_a_port_is_a_crash():
    def leave(port, g):
        sys.exit(3)

    r = _run(3, leave, dtypes=("float64",))
    err = r.errors["float64"]["numpy:b"]
    assert isinstance(err, PortError) and err.exc_type == "SystemExit" and err.phase == "step 0"


def test_arrays_are_copied_at_the_boundary():
    # The port returns its own W, then updates it in place at the next step: the recorded
    # step must keep the value it had.
    r = _run(3, dtypes=("float64",), keep="all")
    w = r.traces["float64"]["numpy"]
    assert not np.array_equal(w.steps[0]["parameters"]["W"], w.steps[2]["parameters"]["W"])


class _Detachable:
    """A stand-in for a torch tensor that requires grad (numpy() refuses until detached)."""

    def __init__(self, value, attached=True):
        self.value, self.attached = value, attached

    def detach(self):
        return _Detachable(self.value, attached=False)

    def cpu(self):
        return self

    def numpy(self):
        if self.attached:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad")
        return np.asarray(self.value)


def test_tensors_that_require_grad_are_detached():
    def attached(port, g):
        port.W -= port.case.option("lr") * g
        return ({"gradients": {"W": _Detachable(g.copy())}, "parameters": {"W": _Detachable(port.W.copy())}},)

    r = _run(3, attached, dtypes=("float64",))
    assert not r.errors["float64"], r.errors
    assert r.comparisons[0].ok


def test_envelope_accepts_the_references_own_rounding_and_catches_tf32():
    # The false alarm of issue 10: the reference's own float32 result drifts from its
    # float64 run far beyond the written model (TF1's conv gradient: 1.1e-3), the port
    # agrees with it to that drift. The reference's drift is acceptable by definition.
    def drifting_reference(port, g):
        if port.dtype == "float32" and port.variant is None:
            g += 1e-4 * np.abs(g).max() * np.random.default_rng(port.t).standard_normal(g.shape).astype(g.dtype)
        return None

    mod_ref = _module(drifting_reference)
    plain = _module()
    r = run_case(_case(6), modules={"numpy": mod_ref, "numpy:b": plain})
    c32 = next(c for c in r.comparisons if c.dtype == "float32")
    grads = [d for d in c32.diffs if d.stage == "gradients"]
    assert c32.ok, c32.first_divergence
    assert any(d.model_units > 1 for d in grads)  # the written model alone: a false alarm
    assert all(d.envelope is not None and d.units <= 1 for d in grads)
    # the same pair without the float64 run: the written model judges, and flags it
    only32 = run_case(_case(6), modules={"numpy": mod_ref, "numpy:b": plain}, dtypes=("float32",))
    assert not only32.comparisons[0].ok
    assert all(d.envelope is None for d in only32.comparisons[0].diffs)

    # A port whose own float32 drift is TF32's (2^-11 relative) is not excused by a clean
    # reference, though its own float64 run would explain it: its drift counts only up to
    # PORT_CAP x the model bound.
    def tf32_port(port, g):
        if port.dtype == "float32":
            g[...] = (g.view(np.int32) & ~0x1FFF).view(np.float32)
        return None

    tf32 = _module(tf32_port)
    caught = run_case(_case(6), modules={"numpy": plain, "numpy:b": tf32})
    c = next(c for c in caught.comparisons if c.dtype == "float32")
    assert not c.ok and c.first_divergence.stage == "gradients"
    d = c.first_divergence.diff
    # measured: 24x the model bound, and the reference's own drift 1.6% of it: the envelope is
    # ENVELOPE_FACTOR * (0.016 + PORT_CAP) = 6.03x the model (without the cap, the port's drift
    # would count whole: 2 x 24x, and excuse it); the port stays ~4x over its limit
    assert d.envelope <= ENVELOPE_FACTOR * (PORT_CAP + 0.05) * d.model_bound
    assert d.units > 3 and d.model_units > 20


def test_summary_mode_finds_the_same_first_divergence(tmp_path):
    full = _run(20, _bug_from(7), dtypes=("float64",))
    summ = _run(20, _bug_from(7), dtypes=("float64",), summary=True, trace_dir=str(tmp_path))
    f, s = full.comparisons[0].first_divergence, summ.comparisons[0].first_divergence
    assert (s.step, s.stage) == (f.step, f.stage) and s.diff.summary
    # summaries give a lower bound of the elementwise difference: never more than the full comparison
    assert s.diff.max_abs <= f.diff.max_abs if s.name == f.name else True
    assert _run(20, dtypes=("float64",), summary=True).comparisons[0].ok
    files = sorted(os.listdir(tmp_path))
    assert files == ["synthetic_linear.numpy-b.float64.trace", "synthetic_linear.numpy.float64.trace"]


def test_summary_trace_compares_with_a_full_one(tmp_path):
    from parity.comparison.comparator import compare
    from parity.trace.memory import load, save
    from parity.run.runner import run_port

    case = _case(6)
    a = run_port(case, "numpy", "float64", module=_module())
    b = run_port(case, "numpy:b", "float64", module=_module(_bug_from(2)))
    pa, pb = save(a, tmp_path / "a.trace"), save(b, tmp_path / "b.trace", summary=True)
    mixed, same = compare(load(pa), load(pb)), compare(load(pa), load(save(a, tmp_path / "a2.trace", summary=True)))
    assert mixed.first_divergence.step == 2 and same.verdict == "exact"
    # 6 steps of 256x128 tensors vs their statistics; the initial parameters (256 kB) stay in full
    assert os.path.getsize(pb) < os.path.getsize(pa) / 10


def test_files_are_compared_as_they_are_read(tmp_path):
    from parity.run.runner import compare_files, run_port
    from parity.trace.memory import save

    case = _case(30)
    pa = save(run_port(case, "numpy", "float64", module=_module()), tmp_path / "a.trace")
    pb = save(run_port(case, "numpy:b", "float64", module=_module(_bug_from(12))), tmp_path / "b.trace")
    cmp, wa, wb = compare_files(pa, pb)
    assert cmp.first_divergence.step == 12 and wa.interrupted is None
    assert wb.kept_steps == [10, 11, 12, 13, 14, 27, 28, 29] and len(wb.health.loss) == 30
    cut = tmp_path / "cut.trace"
    raw = open(pb, "rb").read()
    cut.write_bytes(raw[: len(raw) // 2])
    cmp2, _, wcut = compare_files(pa, cut)
    assert wcut.interrupted == wcut.n_steps < 30 and any(i.kind == "steps" for i in cmp2.issues)
