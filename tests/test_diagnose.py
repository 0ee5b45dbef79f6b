"""Diagnosis and settings check on hand-made traces (numpy only, fast)."""

from __future__ import annotations

import numpy as np

from parity.compare import compare
from parity.diagnose import Diagnosis, diagnose, localize, settings_check
from parity.trace import Trace


def _trace(port, steps, settings=None, initial=None, framework="torch"):
    t = Trace(manifest={"case": "c", "port": port, "dtype": "float64", "framework": framework, "settings": settings or {}})
    t.initial = initial or {}
    for s in steps:
        t.add_step(s)
    return t


def test_settings_are_compared_under_each_framework_convention():
    tf = _trace("tf1", [], {"bn_momentum": 0.99, "bn_momentum_convention": "tf", "bn_epsilon": 1e-3,
                            "dropout": {"argument": "keep_prob", "value": 0.75}})
    right = _trace("torch", [], {"bn_momentum": 0.01, "bn_momentum_convention": "torch", "bn_epsilon": 1e-3,
                                 "dropout": {"argument": "p", "value": 0.25}})
    assert settings_check(None, {"tf1": tf, "torch": right}) == []
    wrong = _trace("torch", [], {"bn_momentum": 0.99, "bn_momentum_convention": "torch", "bn_epsilon": 1e-5,
                                 "dropout": {"argument": "p", "value": 0.75}})
    warnings = settings_check(None, [tf, wrong])
    assert len(warnings) == 3
    assert any("momentum" in w for w in warnings) and any("epsilon" in w for w in warnings) and any("dropout" in w for w in warnings)


def test_max_norm_axis_conventions():
    tf = _trace("tf1", [], {"max_norm": {"api": "tf.clip_by_norm", "axis": 0, "radius": 1.0, "when": "after update"}})
    ok = _trace("torch", [], {"max_norm": {"api": "torch.renorm", "dim": 0, "radius": 1.0, "when": "after update"}})
    bad = _trace("torch", [], {"max_norm": {"api": "torch.renorm", "dim": 1, "radius": 1.0, "when": "after update"}})
    assert settings_check(None, [tf, ok]) == [] and len(settings_check(None, [tf, bad])) == 1


def test_matching_traces_have_no_diagnosis():
    step = {"loss": {"loss": np.array(1.0)}}
    a, b = _trace("tf1", [step]), _trace("torch", [step])
    assert diagnose(None, compare(a, b), {"tf1": a, "torch": b}) == []


def test_sum_vs_mean_is_named_from_the_numbers():
    x = np.ones((8, 2))
    g = np.array([[0.5, -0.25]])
    a = _trace("tf1", [{"inputs": {"X": x}, "loss": {"loss": np.array(0.75)}, "gradients": {"W": g}}])
    b = _trace("torch", [{"inputs": {"X": x}, "loss": {"loss": np.array(6.0)}, "gradients": {"W": 8 * g}}])
    cmp = compare(a, b)
    found = diagnose(None, cmp, [a, b])
    assert found and isinstance(found[0], Diagnosis) and found[0].pitfall == "loss-reduction"
    assert "batch size 8" in found[0].evidence


def test_accumulated_gradients_are_named_zero_grad():
    g0, g1 = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    s = lambda g: {"loss": {"loss": np.array(1.0)}, "gradients": {"w": g}}  # noqa: E731
    a = _trace("tf1", [s(g0), s(g1)])
    b = _trace("torch", [s(g0), s(g0 + g1)])
    found = diagnose(None, compare(a, b), [a, b])
    assert found[0].pitfall == "zero-grad"


def test_an_unmatched_divergence_is_unknown_but_localized():
    a = _trace("tf1", [{"forward": {"h": np.array([[0.5, -0.5, 1.0]])}}])
    b = _trace("torch", [{"forward": {"h": np.array([[0.46, -0.46, 0.76]])}}])
    cmp = compare(a, b)
    assert diagnose(None, cmp, [a, b]) == []
    assert localize(cmp).startswith("unknown: first divergence at step 0, forward, h")
