"""Diagnosis and settings check on hand-made traces (numpy only, fast)."""

from __future__ import annotations

import numpy as np

from parity.comparison.comparator import compare
from parity.pitfalls.diagnose import Diagnosis, diagnose, localize, settings_check
from parity.trace.memory import Trace


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
from parity.cases.case import Cost  # noqa: E402
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


def test_behind_a_batchnorm_only_a_tf32_sized_accepted_product_is_read_as_tf32():
    # The first divergence is a kernel's gradient (a BatchNorm after the conv amplified its difference): the accepted
    # conv output is TF32's evidence only when its difference reaches TF32's size, never at the ~1e-5 x sum|x||k| of
    # another IEEE algorithm (cuDNN's Winograd) nor where both are the same IEEE product.
    from types import SimpleNamespace

    from parity.pitfalls import numerics

    rng = np.random.default_rng(3)
    x, k = _f32(rng.normal(size=(4, 6, 6, 3))), _f32(rng.normal(size=(3, 3, 3, 8)))
    ieee, bound = _f32(conv2d(x, k, 1, (1, 1, 1, 1))), conv2d(np.abs(x), np.abs(k), 1, (1, 1, 1, 1))

    class Ctx(SimpleNamespace):
        def at(self, trace, stage, step=None):
            return trace.get(stage, {})

        def semantic(self, stage, name=None, step=None):
            return stage == "gradients"

        def params_before(self, trace, step=None):
            return {"conv/kernel": k}

        def matching(self, stage, step=None):
            return {n: np.asarray(v, float) for n, v in self.a.get(stage, {}).items()}

    def products(conv_b):
        a, b = ({"inputs": {"x": x}, "forward": {"conv": y}} for y in (ieee, conv_b))
        c = Ctx(a=a, b=b, first=SimpleNamespace(step=0, stage="gradients", name="conv/kernel"))
        return list(numerics._first_products(c))

    assert [p[1] for p in products(_f32(conv2d(round_tf32(x), round_tf32(k), 1, (1, 1, 1, 1))))] == ["conv(x, conv/kernel)"]
    assert products(_f32(ieee + 1e-5 * bound * rng.choice([-1.0, 1.0], size=ieee.shape))) == []  # Winograd-sized
    assert products(ieee) == []


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
    from parity.trace.memory import Window, WindowRecorder, to_step

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


# -- naming defects found on real programs (examples/, the distributed ports) ----------------------------
def _adam_step(w0, update, settings, port):
    g = np.full_like(w0, 1e-5)
    slots = {"m/W": 0.1 * g, "v/W": 1e-3 * g * g}  # equal in both ports: only the update differs
    return _trace(port, [{"loss": {"loss": np.array(0.5)}, "gradients": {"W": g}, "slots": slots,
                          "parameters": {"W": w0 + update}}], settings, initial={"W": w0})


def test_adam_is_not_momentum_sgd_for_nesterov():
    # TF1's ApplyAdam carries a use_nesterov attribute (reported nesterov=False): that made Adam "an optimizer
    # with momentum", and a 1x1 network's single update ratio (1.3 here, an epsilon placement) read as 1 + mu
    w0 = np.array([[0.5]])
    a = _adam_step(w0, np.array([[-1e-3]]), {"optimizer": "Adam", "nesterov": False, "eps": 1e-8}, "tf1")
    b = _adam_step(w0, np.array([[-1.3e-3]]), {"optimizer": "Adam", "eps": 1e-8, "betas": [0.9, 0.999]}, "torch")
    cmp = compare(a, b)
    assert cmp.first_divergence.stage == "parameters"
    named = [d.pitfall for d in diagnose(None, cmp, [a, b])]
    assert "nesterov" not in named and named[:1] == ["adam-epsilon"], named


def test_nesterov_needs_momentum_sgd_and_a_ratio_other_than_one():
    # momentum SGD: a ratio of 1 + mu = 1.75 is nesterov; the same run with momentum 0 (plain SGD) is not
    w0 = np.array([[0.5, -0.25], [1.0, 2.0]])
    g = np.array([[0.1, -0.2], [0.3, 0.4]])

    def run(ratio, settings, port):
        st = {"loss": {"loss": np.array(0.5)}, "gradients": {"W": g}, "slots": {"momentum/W": g}, "parameters": {"W": w0 - 0.1 * ratio * g}}
        return _trace(port, [st], settings, initial={"W": w0})

    sgd = {"optimizer": "SGD", "momentum": 0.75}
    a, b = run(1.0, sgd, "tf1"), run(1.75, sgd, "torch")
    assert [d.pitfall for d in diagnose(None, compare(a, b), [a, b])][:1] == ["nesterov"]
    plain = {"optimizer": "SGD", "momentum": 0.0}
    a, b = run(1.0, plain, "tf1"), run(1.75, plain, "torch")
    assert "nesterov" not in [d.pitfall for d in diagnose(None, compare(a, b), [a, b])]
    # a ratio of 1 within the run's tolerance (float64: 1e-7) is no Nesterov, whatever else diverges
    from parity.pitfalls.base import Context
    from parity.pitfalls.registry import get_pitfall
    a, b = run(1.0, sgd, "tf1"), run(1.0 + 7e-10, sgd, "torch")
    cmp = compare(a, b)
    first = cmp.first_divergence or type("D", (), {"step": 0, "stage": "parameters", "name": "W"})()
    assert get_pitfall("nesterov").check(Context(cmp, first, a, b)) is None


def test_a_dropout_scaled_alike_is_not_keep_prob():
    # the "same dropout mask on every replica" port: other masks, one keep probability (kept values x1)
    rng = np.random.default_rng(2)
    flat = np.abs(rng.normal(size=(8, 64))) + 0.1
    ma, mb = (rng.uniform(size=(8, 64)) < 0.75).astype(float), (rng.uniform(size=(8, 64)) < 0.75).astype(float)
    a = _trace("tf1", [{"forward": {"flatten": flat, "dropout": flat * ma / 0.75}}])
    b = _trace("torch", [{"forward": {"flatten": flat, "dropout": flat * mb / 0.75}}])
    cmp = compare(a, b)
    assert cmp.first_divergence.name == "dropout"
    assert "dropout-keep-prob" not in [d.pitfall for d in diagnose(None, cmp, [a, b])]
    # keep 0.75 vs 0.25 (torch p = keep_prob): kept values x3, named
    b2 = _trace("torch", [{"forward": {"flatten": flat, "dropout": flat * (ma * (rng.uniform(size=ma.shape) < 0.5)) / 0.25}}])
    assert [d.pitfall for d in diagnose(None, compare(a, b2), [a, b2])][:1] == ["dropout-keep-prob"]


def test_tf32_needs_a_matmul_or_conv_output_first_never_a_mask_multiply():
    from parity.pitfalls.base import Context
    from parity.pitfalls.numerics import PRODUCT

    a, b = _conv_traces("float32", tf32=True)
    cmp = compare(a, b, cost=Cost(depth=2, reduction=27))
    assert PRODUCT(Context(cmp, cmp.first_divergence, a, b))
    assert [d.pitfall for d in diagnose(None, cmp, [a, b])][:1] == ["tf32-emulated"]
    # float32 dropout over a flatten, the keep mask among the inputs and a dense after it: the first
    # divergence is keep_mask x flatten / keep, elementwise; "keep_mask @ dense/kernel" is no layer of it
    rng = np.random.default_rng(7)
    flat, k = _f32(np.abs(rng.normal(size=(8, 32)))), _f32(rng.normal(size=(32, 4)) * 0.1)
    ma = (rng.uniform(size=(8, 32)) < 0.75).astype(float)
    mb = ma.copy()
    mb[4:] = ma[:4]

    def run(m, port):
        drop = _f32(flat * m / 0.75)
        return _trace(port, [{"inputs": {"keep_mask": ma}, "forward": {"flatten": flat, "dropout": drop, "dense": _f32(drop @ k)}}],
                      initial={"dense/kernel": k})

    a, b = run(ma, "tf1"), run(mb, "torch")
    a.manifest["dtype"] = b.manifest["dtype"] = "float32"
    cmp = compare(a, b, cost=Cost(depth=2, reduction=32))
    assert cmp.first_divergence.name == "dropout"
    assert not PRODUCT(Context(cmp, cmp.first_divergence, a, b))
    assert "tf32-emulated" not in [d.pitfall for d in diagnose(None, cmp, [a, b])]


# -- names from facts: the one whose effect shows at the divergence's stage (corpus 05, 01) ------------------------
def _bn_facts(mom_a, eps_a, mom_b, eps_b):
    ref = {"framework": "tf2", "mode": "train", "batchnorm": [f"bn: momentum {mom_a}, eps {eps_a}"]}
    port = {"framework": "torch", "mode": "train", "batchnorm": [f"0: momentum {mom_b}, eps {eps_b}"]}
    return {"reference": ref, "port": port, "differs": {"batchnorm": (ref["batchnorm"], port["batchnorm"])}}


def _bn_out(x, eps):
    mean, var = x.mean(axis=0), x.var(axis=0)  # training mode, per channel (last axis): the batch's own biased variance
    return (x - mean) / np.sqrt(var + eps)  # gamma 1, beta 0 (their initial values)


def test_a_training_forward_with_both_bn_constants_differing_is_the_epsilon_never_the_momentum():
    # corpus 05 (Keras ResNet vs torch): momentum 0.99/0.9 AND eps 1e-3/1e-5 differ; the step-0 forward of a
    # training-mode BatchNorm does not read the momentum (it only moves the running statistics: stage state)
    x = np.random.default_rng(0).normal(0.0, 0.3, (16, 4))  # var ~0.09: eps 1e-3 changes the output ~0.5%
    a = _trace("tf2", [{"forward": {"bn": _bn_out(x, 1e-3)}}], initial={"bn/gamma": np.ones(4), "bn/beta": np.zeros(4)})
    b = _trace("torch", [{"forward": {"bn": _bn_out(x, 1e-5)}}])
    cmp = compare(a, b)
    assert cmp.first_divergence.stage == "forward"
    found = diagnose(None, cmp, [a, b], facts=_bn_facts(0.99, 0.001, 0.9, 1e-05))
    assert [d.pitfall for d in found][:1] == ["bn-epsilon"] and found[0].score == 1.0, found
    assert "bn-momentum" not in [d.pitfall for d in found] and "predicted" in found[0].evidence
    # the same output with only the momenta differing: nothing at this stage depends on them -> unknown
    assert "bn-momentum" not in [d.pitfall for d in diagnose(None, cmp, [a, b], facts=_bn_facts(0.99, 0.001, 0.9, 0.001))]
    # an epsilon difference whose predicted change is not the measured one (the port's output scaled 1.1) is not named
    b2 = _trace("torch", [{"forward": {"bn": 1.1 * _bn_out(x, 1e-5)}}])
    cmp2 = compare(a, b2)
    assert "bn-epsilon" not in [d.pitfall for d in diagnose(None, cmp2, [a, b2], facts=_bn_facts(0.99, 0.001, 0.9, 1e-05))]


def test_bn_momentum_is_named_where_the_running_statistics_differ():
    a = _trace("tf2", [{"state": {"bn/moving_mean": np.array([0.01, 0.02])}}])
    b = _trace("torch", [{"state": {"bn/moving_mean": np.array([0.1, 0.2])}}])
    cmp = compare(a, b)
    found = diagnose(None, cmp, [a, b], facts=_bn_facts(0.99, 0.001, 0.9, 1e-05))
    assert [d.pitfall for d in found][:1] == ["bn-momentum"], found


def _clip_traces(lr_b=1.0):
    g = np.array([0.5, -12.0, 3.0])
    norm = np.linalg.norm(g)
    step = lambda pg, lr: {"learning_rate": {"lr": np.array(lr)}, "gradients": {"w": g},  # noqa: E731
                           "processed_gradients": {"w": pg}}
    a = _trace("tf1", [step(g * 5.0 / norm, 1.0)], framework="tf1")  # clip_by_global_norm(5)
    b = _trace("torch", [step(np.clip(g, -5, 5), lr_b)])  # p.grad.data.clamp_(-5, 5)
    return a, b


def _clip_facts():
    ref = {"framework": "tf1", "optimizer": "sgd", "lr": 1.0, "lr.schedule": "a schedule", "clip": "global norm"}
    port = {"framework": "torch", "optimizer": "sgd", "lr": 1.0, "lr.schedule": "constant", "clip": "value 5"}
    return {"reference": ref, "port": port,
            "differs": {"lr.schedule": ("a schedule", "constant"), "clip": ("global norm", "value 5")}}


def test_processed_gradients_differing_over_agreeing_gradients_is_the_clipping_not_the_rate():
    # corpus 01 (Zaremba LM, pre-fix torch with an element-wise clamp_): the learning-rate stage is exact, so the
    # schedule fact cannot be this divergence; raw gradients agree and processed ones differ: the clipping
    a, b = _clip_traces()
    cmp = compare(a, b)
    assert cmp.first_divergence.stage == "processed_gradients"
    names = [d.pitfall for d in diagnose(None, cmp, [a, b], facts=_clip_facts())]
    assert names[:1] == ["gradient-clipping"] and "lr-schedule" not in names, names


def test_sgd_dampening_is_never_named_when_both_dampenings_match():
    from parity.pitfalls.facts import allowed

    same = {"reference": {"optimizer": "sgd", "dampening": 0.0}, "port": {"optimizer": "sgd", "dampening": 0.0}}
    assert not allowed("sgd-dampening", same)[0]
    assert allowed("sgd-dampening", {"reference": {"optimizer": "sgd", "dampening": 0.0},
                                     "port": {"optimizer": "sgd", "dampening": 0.9}})[0]
