"""Ports in worker processes (parity.run.workers): the same results as in-process, errors kept, memory split."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from parity.run import workers
from parity.cases.registry import get_case
from parity.errors import PortError
from parity.run.runner import run_case
from parity.trace.memory import RING_BYTES, Window, WindowRecorder

pytest.importorskip("torch")
pytest.importorskip("tensorflow")


@pytest.fixture(autouse=True)
def _fresh_workers():
    yield
    workers.shutdown()


def _worst(result):
    return {(c.dtype, c.a["port"], c.b["port"]): {k: (d.max_abs, d.step) for k, d in c.worst.items()} for c in result.comparisons}


def test_workers_give_the_same_numbers_as_in_process():
    # The workers run the same port code on the same data: the same pairs, the same verdicts,
    # float64 agreement at rounding level in both. Not bit for bit: TensorFlow's rounding
    # depends on what ran before it in the process (measured: a TF1 session run before the tf2
    # port makes tf1 and tf2 agree exactly in float64, 2.2e-15 apart with tf2 in its own worker;
    # after the rest of the test suite, tf1 vs numpy hidden1 is 2.55e-15 in-process, 2.22e-15
    # in a fresh worker). A worker runs each framework alone, as a user's program runs.
    case = dataclasses.replace(get_case("seed002_clip_value"), steps=4)
    here = run_case(case, workers=False)
    there = run_case(case, workers=True)
    assert here.passed and there.passed
    assert sorted(_worst(here)) == sorted(_worst(there)) and len(_worst(here)) == 12  # 6 pairs x 2 dtypes
    for r in (here, there):
        assert all(d.verdict != "semantic" for c in r.comparisons for d in c.worst.values())
        # float64: 4 steps of a 3-layer MLP agree to ~10 float64 ulps (measured <= 4.5e-15 absolute)
        assert all(d.max_rel < 1e-13 for c in r.comparisons if c.dtype == "float64" for d in c.worst.values())
    assert {d: sorted(t) for d, t in here.traces.items()} == {d: sorted(t) for d, t in there.traces.items()}
    w = there.traces["float32"]["torch"]
    assert w.manifest["framework"] == "torch" and w.n_steps == 4 and w.health is not None


def test_a_diverging_pair_is_found_at_the_same_place():
    case = get_case("seed001_convnet_flatten_unpermuted")
    case = dataclasses.replace(case, steps=2)
    here, there = run_case(case, dtypes=["float64"], workers=False), run_case(case, dtypes=["float64"], workers=True)
    firsts = lambda r: [(c.b["port"], c.first_divergence.step, c.first_divergence.stage, c.first_divergence.name)
                        for c in r.comparisons if c.first_divergence is not None]
    assert firsts(here) and firsts(here) == firsts(there)
    # the divergence step is kept in full in the harness process (the report's error maps read it)
    port = firsts(there)[0][0]
    assert there.traces["float64"][port].kept(firsts(there)[0][1])


def test_a_port_refusal_crosses_the_process_with_its_type_and_place():
    # seed 004's "nothing to train": every framework refuses; the refusal the case expects
    # (exception type and message) must be recognised after crossing the pipe.
    case = get_case("seed004_nothing_to_train")
    here, there = run_case(case, workers=False), run_case(case, workers=True)
    assert here.passed and there.passed
    for dtype, errs in there.errors.items():
        for port, err in errs.items():
            ref = here.errors[dtype][port]
            assert isinstance(err, PortError)
            assert (err.exc_type, err.exc_message, err.phase) == (ref.exc_type, ref.exc_message, ref.phase)
            assert [f.filename for f in err.frames] == [f.filename for f in ref.frames]


def test_a_dead_worker_fails_its_ports_not_the_run():
    case = dataclasses.replace(get_case("seed002_clip_value"), steps=3)
    from parity.run.remote_runs import RemoteRun, step_all

    run = RemoteRun(case, "torch", "float64")
    run.open()
    from parity.cases.data import iter_batches

    batch = next(iter(iter_batches(case, "float64")))
    assert isinstance(step_all({"t": run}, batch)["t"], dict)
    run._worker.proc.kill()
    run._worker.proc.wait()
    out = step_all({"t": run}, batch)["t"]
    assert isinstance(out, PortError) and "worker process" in str(out)
    run.close()
    # the next run starts a new worker
    again = RemoteRun(case, "torch", "float64")
    again.open()
    assert isinstance(again.step(batch), dict)
    again.close()


def test_the_harness_process_imports_no_framework():
    # `parity run` with workers: TensorFlow and torch are imported by the workers only.
    code = (
        "import sys; from parity.cli.main import main; rc = main(['run', 'seed000_encoder2_tiny', '-q']);"
        "print('IMPORTED', sorted(m for m in ('tensorflow', 'torch', 'tf_keras') if m in sys.modules)); sys.exit(rc)"
    )
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED []" in proc.stdout
    # the frameworks' start-up noise (absl, cuda stubs) is not relayed
    assert "absl::InitializeLog" not in proc.stderr


def test_the_ring_holds_a_large_step_only_while_it_is_compared():
    # A step larger than the budget is dropped by trim() once compared: memory is one step per port.
    w = Window({"port": "x"}, {})
    rec = WindowRecorder(w, before=2, after=2, budget=1000)
    big = lambda v: {"parameters": {"w": np.full(200, v, np.float64)}}  # 1600 bytes > budget
    for i in range(3):
        rec.add(big(i))
        rec.trim()
        assert w.kept_steps == []
    rec.add(big(3))
    rec.keep_around(3)  # a divergence at step 3: kept in full, whatever its size
    rec.trim()
    assert w.kept_steps == [3]
    small = WindowRecorder(Window({"port": "y"}, {}), before=2, after=2)
    for i in range(5):
        small.add({"parameters": {"w": np.zeros(4)}})
        small.trim()
    assert small.window.kept_steps == [2, 3, 4]  # small steps: the usual ring of before + 1
    assert RING_BYTES >= 1 << 20


def test_the_conditioning_run_is_perturbed_in_its_worker_as_in_process():
    # The conditioning run (parity.comparison.envelope) of a worker's port: its initial parameters moved by
    # at most float32's unit roundoff, the same draws as the same run in this process.
    from parity.run.boundary import PortRun
    from parity.cases.params import UNIT_ROUNDOFF
    from parity.run.remote_runs import RemoteRun

    case = get_case("pitfall_tf32_emulated_right")
    runs = [RemoteRun(case, "tf1", "float64", perturb=0), PortRun(case, "tf1", "float64", perturb=0),
            PortRun(case, "tf1", "float64")]
    try:
        for run in runs:
            run.open()
        moved, local, plain = (r.initial for r in runs)
        assert runs[0].manifest["perturbed"] == 0 and "perturbed" not in runs[2].manifest
        for name, x in plain.items():
            assert np.array_equal(moved[name], local[name])
            rel = np.abs(moved[name] - x) / np.maximum(np.abs(x), 1e-300)
            assert rel.max() <= UNIT_ROUNDOFF * (1 + 1e-9)
        assert any(not np.array_equal(moved[n], plain[n]) for n in plain)
    finally:
        for run in runs:
            run.close()
