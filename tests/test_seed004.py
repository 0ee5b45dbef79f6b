"""Seed 004's exact numbers, in TF1, PyTorch and by hand (numpy): three voices."""

import numpy as np
import pytest

from parity.run.runner import run_case

pytestmark = [pytest.mark.tf, pytest.mark.torch]


@pytest.fixture(scope="module")
def results():
    return {
        name: run_case(name)
        for name in ("seed004_oscillate", "seed004_constant", "seed004_var_list", "seed004_nothing_to_train", "seed004_global_step_ema")
    }


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_w_oscillates_2_4_2_4_exactly_in_every_voice(results, dtype):
    r = results["seed004_oscillate"]
    for port, trace in r.traces[dtype].items():
        w = [trace.initial["w"]] + [s["parameters"]["w"] for s in trace.steps]
        # integers in binary: exact in both dtypes, no tolerance
        assert [float(v) for v in w] == [2.0, 4.0, 2.0, 4.0, 2.0], port
        # dL/dw = 2 w x^2 - 2 y x = 2w - 6 at x=1, y=3: -2 then 2 then -2 ...
        assert [float(s["gradients"]["w"]) for s in trace.steps] == [-2.0, 2.0, -2.0, 2.0], port
    assert {"tf1", "tf1:minimize", "torch", "numpy"} <= set(r.traces[dtype])


def test_minimize_equals_compute_plus_apply_exactly(results):
    r = results["seed004_oscillate"]
    pairs = [c for c in r.comparisons if {c.a["port"], c.b["port"]} == {"tf1", "tf1:minimize"}]
    assert len(pairs) == 2 and all(c.verdict == "exact" for c in pairs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_constant_is_never_trained_w1_plus_w2_is_minus_3(results, dtype):
    for port, trace in results["seed004_constant"].traces[dtype].items():
        for s in trace.steps:
            assert float(s["parameters"]["w1"] + s["parameters"]["w2"]) == -3.0, port


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_var_list_trains_w2_to_minus_7_and_leaves_w1_at_4(results, dtype):
    traces = results["seed004_var_list"].traces[dtype]
    assert {"tf1", "tf1:trainable_false", "tf1:minimize", "torch", "torch:optimizer", "torch:buffer", "numpy"} <= set(traces)
    for port, trace in traces.items():
        for s in trace.steps:
            assert float(s["parameters"]["w1"]) == 4.0, port
            assert float(s["parameters"]["w2"]) == -7.0, port
            assert set(s["gradients"]) == {"w2"}, port


def test_every_pair_agrees(results):
    for name in ("seed004_oscillate", "seed004_constant", "seed004_var_list", "seed004_global_step_ema"):
        assert results[name].passed, name


def test_nothing_to_train_gives_each_frameworks_own_error(results):
    r = results["seed004_nothing_to_train"]
    assert r.passed
    for dtype in ("float64", "float32"):
        errs = r.errors[dtype]
        assert set(errs) == set(r.case.ports)  # every port refuses
        assert (errs["tf1"].exc_type, errs["tf1"].exc_message) == ("ValueError", "No variables to optimize.")
        assert (errs["torch"].exc_type, errs["torch"].exc_message) == ("ValueError", "optimizer got an empty parameter list")
        assert errs["tf1"].phase == "build"


def test_global_step_counts_and_ema_shadows_agree(results):
    r = results["seed004_global_step_ema"]
    assert r.passed
    for port, trace in r.traces["float64"].items():
        assert [int(s["state"]["global_step"]) for s in trace.steps] == list(range(1, 13)), port
    tf1 = r.traces["float64"]["tf1"]
    # First shadow by hand: n=1 after the increment, decay = min(0.9, 2/11) (in float32, as TF
    # computes it); w_1 = 2 - 0.1 * (2*2 - 6) = 2.2; shadow = 2 - (2 - 2.2) * (1 - decay).
    d = np.float32(2.0) / np.float32(11.0)
    expected = 2.0 - (2.0 - 2.2) * float(np.float32(1.0) - d)
    assert float(tf1.steps[0]["state"]["w/ExponentialMovingAverage"]) == pytest.approx(expected, rel=1e-15)
    # 1e-15: float64 evaluation of the same three operations (a few ulp).
