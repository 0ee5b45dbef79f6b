"""The TF2 flavour of seeds 000 and 004 (Keras 3 layers and SGD, GradientTape), against
TF1 and the numpy oracle, with the seeds' exact numbers."""

import numpy as np
import pytest

from parity.cases.registry import get_case
from parity.run.runner import run_case
from parity.comparison.tolerance import FLOAT64_SEMANTIC

pytestmark = [pytest.mark.tf]

ENCODERS = ("seed000_encoder2_tiny", "seed000_encoder3_tiny", "seed000_encoder3_xavier", "seed000_encoder3_clip_bites")


@pytest.mark.parametrize("name", ENCODERS)
def test_tf2_encoder_matches_tf1_and_numpy(name):
    # 40 of the 100 steps: the same code paths; the full cases run in `make parity`.
    result = run_case(get_case(name).replace(steps=40), ports=["tf2", "tf1", "numpy"], pairs="reference", keep="all")
    assert not any(result.errors.values())
    for cmp in result.comparisons:
        assert cmp.ok, f"{cmp.pair} ({cmp.dtype}): {cmp.first_divergence.describe()}"
        if cmp.dtype == "float64":
            # Measured: tf2 == tf1 bitwise, tf2 vs numpy <= 4e-15 relative.
            assert cmp.worst_rel() <= FLOAT64_SEMANTIC
    tf2 = result.traces["float64"]["tf2"]
    if name == "seed000_encoder3_clip_bites":
        # The threshold bites: some processed gradient differs from the raw one.
        s0 = tf2.steps[0]
        assert any(np.any(s0["gradients"][k] != s0["processed_gradients"][k]) for k in s0["gradients"])
        assert max(np.abs(g).max() for g in s0["processed_gradients"].values()) <= 0.05


@pytest.fixture(scope="module")
def seed004():
    names = ("seed004_oscillate", "seed004_constant", "seed004_var_list", "seed004_nothing_to_train",
             "seed004_global_step_ema")
    ports = {
        "seed004_var_list": ["numpy", "tf2", "tf2:trainable_false", "tf1"],
        "seed004_nothing_to_train": ["tf2"],
    }
    return {n: run_case(n, ports=ports.get(n, ["numpy", "tf2", "tf1"]), pairs="reference") for n in names}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tf2_oscillates_2_4_2_4_exactly(seed004, dtype):
    trace = seed004["seed004_oscillate"].traces[dtype]["tf2"]
    w = [trace.initial["w"]] + [s["parameters"]["w"] for s in trace.steps]
    # Small integers are exact in binary: no tolerance.
    assert [float(v) for v in w] == [2.0, 4.0, 2.0, 4.0, 2.0]
    assert [float(s["gradients"]["w"]) for s in trace.steps] == [-2.0, 2.0, -2.0, 2.0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tf2_constant_is_never_trained_w1_plus_w2_is_minus_3(seed004, dtype):
    trace = seed004["seed004_constant"].traces[dtype]["tf2"]
    for s in trace.steps:
        assert float(s["parameters"]["w1"] + s["parameters"]["w2"]) == -3.0
        assert set(s["gradients"]) == {"w1", "w2"}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("port", ["tf2", "tf2:trainable_false"])
def test_tf2_var_list_and_trainable_false_train_w2_to_minus_7(seed004, dtype, port):
    trace = seed004["seed004_var_list"].traces[dtype][port]
    for s in trace.steps:
        assert float(s["parameters"]["w2"]) == -7.0 and float(s["parameters"]["w1"]) == 4.0
        assert set(s["gradients"]) == {"w2"}


def test_tf2_nothing_to_train_is_refused_at_the_first_step(seed004):
    result = seed004["seed004_nothing_to_train"]
    assert result.passed
    for dtype in ("float64", "float32"):
        err = result.errors[dtype]["tf2"]
        # Keras 3's apply_gradients([]) fails unpacking an empty list: a refusal, in obscure words.
        assert err.exc_type == "ValueError" and err.phase == "step 0"
        assert "not enough values to unpack" in err.exc_message


def test_tf2_global_step_is_counted_and_ema_matches_tf1_and_the_oracle(seed004):
    result = seed004["seed004_global_step_ema"]
    for cmp in result.comparisons:
        # Measured exact (0.0): the same tf.train.ExponentialMovingAverage, float32 decay included.
        assert cmp.verdict == "exact", f"{cmp.pair} ({cmp.dtype})"
    trace = result.traces["float64"]["tf2"]
    assert [int(s["state"]["global_step"]) for s in trace.steps] == list(range(1, 13))
    assert trace.steps[0]["state"]["global_step"].dtype == np.int64


@pytest.mark.parametrize("name", ["seed004_oscillate", "seed004_constant", "seed004_var_list"])
def test_tf2_agrees_exactly_with_tf1_and_numpy(seed004, name):
    for cmp in seed004[name].comparisons:
        assert cmp.verdict == "exact", f"{cmp.pair} ({cmp.dtype}): {cmp.first_divergence}"
