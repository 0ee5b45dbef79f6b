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


# -- naming without over-claiming (issue 10) -------------------------------------------------------
from parity.cases import Cost  # noqa: E402
from parity.pitfalls.reference import conv2d, round_tf32  # noqa: E402


def _f32(x):
    return np.asarray(x, np.float32).astype(np.float64)


def _conv_traces(dtype, tf32: bool):
    """A conv -> ReLU -> dense net without BatchNorm or LayerNorm; B's conv in TF32 when ``tf32``."""
    rng = np.random.default_rng(3)
    x, k, kd = _f32(rng.normal(size=(4, 8, 8, 3))), _f32(rng.normal(size=(3, 3, 3, 16)) * 0.3), _f32(rng.normal(size=(6 * 6 * 16, 2)) * 0.1)

    def run(r):
        conv = _f32(np.maximum(conv2d(r(x), r(k), 1, (0, 0, 0, 0)), 0))
        return {"inputs": {"X": x}, "forward": {"conv": conv, "logits": _f32(conv.reshape(4, -1) @ kd)}}

    a = _trace("tf1", [run(lambda v: v)], initial={"K": k, "Kd": kd}, framework="tensorflow")
    b = _trace("torch", [run(round_tf32 if tf32 else (lambda v: v))], initial={"K": k, "Kd": kd})
    a.manifest["dtype"] = b.manifest["dtype"] = dtype
    return a, b


def test_tf32_conv_without_norm_layers_is_named_tf32_never_an_epsilon():
    # the H200 report: TF32 in a net with no BN/LN was named bn-epsilon / layernorm-epsilon
    a, b = _conv_traces("float32", tf32=True)
    cmp = compare(a, b, cost=Cost(depth=2, reduction=27))
    assert not cmp.ok and cmp.first_divergence.stage == "forward"
    named = [d.pitfall for d in diagnose(None, cmp, [a, b])]
    assert named and named[0] == "tf32-emulated", named
    assert not {"bn-epsilon", "layernorm-epsilon"} & set(named)


def test_a_float64_difference_is_never_named_tf32():
    # the same perturbation in a float64 run: TF32 never touches float64, so no TF32 name
    a, b = _conv_traces("float64", tf32=True)
    cmp = compare(a, b)
    assert not cmp.ok
    assert "tf32-emulated" not in [d.pitfall for d in diagnose(None, cmp, [a, b])]


def test_dropout_in_eval_mode_without_bn_is_named_as_such():
    rng = np.random.default_rng(4)
    h = np.maximum(rng.normal(size=(8, 6)), 0)
    mask = rng.uniform(size=(8, 6)) >= 0.25
    a = _trace("tf1", [{"forward": {"hidden": h, "dropout": h * mask / 0.75}}], {"dropout": {"argument": "keep_prob", "value": 0.75}})
    b = _trace("torch", [{"forward": {"hidden": h, "dropout": h}}], {"dropout": {"argument": "p", "value": 0.25}})
    named = [d.pitfall for d in diagnose(None, compare(a, b), [a, b])]
    assert named and named[0] == "dropout-eval-mode" and "dropout-keep-prob" not in named, named


def test_a_bn_signature_needs_bn_state_in_the_traces():
    # per-column affine outputs (what an epsilon does to a BN output) in a net without BN state: no BN name
    rng = np.random.default_rng(5)
    y = rng.normal(size=(8, 4))
    y = (y - y.mean(0)) / y.std(0)
    a = _trace("tf1", [{"forward": {"h": y}}])
    b = _trace("torch", [{"forward": {"h": y * np.array([0.9, 0.8, 0.95, 0.7])}}])
    cmp = compare(a, b)
    assert "bn-epsilon" not in [d.pitfall for d in diagnose(None, cmp, [a, b])]
    # the same numbers with moving statistics in the state stage are named bn-epsilon
    st = {"state": {"moving_mean": np.zeros(4), "moving_variance": np.ones(4)}}
    a2, b2 = _trace("tf1", [{"forward": {"h": y}, **st}]), _trace("torch", [{"forward": {"h": y * np.array([0.9, 0.8, 0.95, 0.7])}, **st}])
    assert [d.pitfall for d in diagnose(None, compare(a2, b2), [a2, b2])][:1] == ["bn-epsilon"]


def _window(trace, before, diverges_at):
    """``trace`` as a streamed run keeps it: a ring of ``before + 1`` steps, frozen around the divergence."""
    from parity.trace import Window, WindowRecorder, to_step

    w = Window(dict(trace.manifest), trace.initial)
    rec = WindowRecorder(w, before=before, after=1)
    for i, step in enumerate(trace.steps):
        rec.add(to_step(step))
        if i == diverges_at:
            rec.keep_around(i)
    return w


def test_a_step_outside_the_window_is_no_evidence_never_a_crash():
    # zero-grad needs step k-1's gradients; a window that dropped them (tensors over SMALL
    # elements are not kept outside the window) answers unknown, with the localisation
    rng = np.random.default_rng(6)
    g0, g1 = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    s = lambda g: {"loss": {"loss": np.array(1.0)}, "gradients": {"w": g}}  # noqa: E731
    a, b = _trace("tf1", [s(g0), s(g1)]), _trace("torch", [s(g0), s(g0 + g1)])
    cmp = compare(a, b)
    assert cmp.first_divergence.step == 1
    kept = [_window(t, before=1, diverges_at=1) for t in (a, b)]
    assert diagnose(None, cmp, kept)[0].pitfall == "zero-grad"
    dropped = [_window(t, before=0, diverges_at=1) for t in (a, b)]
    assert not dropped[0].kept(0) and dropped[0].kept(1)
    assert diagnose(None, cmp, dropped) == []
    assert localize(cmp).startswith("unknown: first divergence at step 1, gradients, w")


def test_an_extra_tensor_does_not_disable_a_check():
    # a port that also records the global gradient norm next to the gradients: zero-grad is still named
    g0, g1 = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 0.25])
    s = lambda g, extra: {"loss": {"loss": np.array(1.0)}, "gradients": {"w": g, "global_norm": np.array(extra)}}  # noqa: E731
    a = _trace("tf1", [s(g0, 3.7), s(g1, 1.1)], initial={"w": np.zeros(3)})
    b = _trace("torch", [s(g0, 3.7), s(g0 + g1, 4.3)], initial={"w": np.zeros(3)})
    assert diagnose(None, compare(a, b), [a, b])[0].pitfall == "zero-grad"
