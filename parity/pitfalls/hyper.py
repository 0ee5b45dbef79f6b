"""Signatures of optimizer hyper-parameters a port set differently (or left at its framework's default):
the optimizer class, Adadelta's rho / epsilon / learning rate, RMSprop's centering, Adam's betas, a coupled
weight decay (``parity/cases/catalog/pitfalls_hyper.py``).

Most are checked by recomputation: each side's first update is recomputed in numpy from the reference's
gradient with that side's own settings (optimizer class and hyper-parameters, in one convention); the
name is given only where the two predictions lie apart, the reference's update matches its own and the
port's its own. Adam's betas are read from the slots alone: at a step whose previous slots agree, each
side's first moment is ``beta1 m + (1 - beta1) g`` (second: ``beta2 v + (1 - beta2) g^2``) with one beta
for every element.
"""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, constant_ratio, pitfall, ratio
from parity.pitfalls.requires import ADAM_SLOTS, Precondition, optimizer_kinds, slot_kind

__all__ = ["PITFALLS", "first_update"]


def first_update(g, w, s: dict, lr: float):
    """The first update (slots at their initial values) of an optimizer with settings ``s`` from gradient ``g``
    on weight ``w``; None where the settings do not say enough."""
    kind = s.get("optimizer")
    g = np.asarray(g, float) + float(s.get("coupled_weight_decay") or 0.0) * np.asarray(w, float)
    if kind == "sgd":
        return -lr * g
    if kind == "momentum":
        return -lr * g * (1.0 + s["momentum"] if s.get("nesterov") else 1.0)
    if kind == "adadelta":  # accum = (1 - rho) g^2; delta = sqrt(0 + eps) / sqrt(accum + eps) g
        rho, eps = s["adadelta_rho"], s["adadelta_epsilon"]
        return -lr * np.sqrt(eps) / np.sqrt((1.0 - rho) * g * g + eps) * g
    if kind == "rmsprop":
        rho, eps = s["rmsprop_decay"], s.get("rmsprop_epsilon", 0.0)
        ms = s.get("rmsprop_initial", 0.0) * rho + (1.0 - rho) * g * g
        if s.get("rmsprop_centered"):
            ms = ms - ((1.0 - rho) * g) ** 2
        inside = str(s.get("rmsprop_epsilon_form", "")).startswith("inside")
        return -lr * g / (np.sqrt(ms + eps) if inside else np.sqrt(ms) + eps)
    if kind == "adam" and "adam_betas" in s:
        eps = s.get("adam_epsilon", 1e-8)
        eff = eps / np.sqrt(1.0 - s["adam_betas"][1]) if s.get("adam_epsilon_form") == "hat" else eps
        return -lr * g / (np.abs(g) + eff)
    return None


_KEYS = {"optimizer-class": ("optimizer",), "optimizer-rho": ("adadelta_rho", "rmsprop_decay"),
         "optimizer-epsilon": ("adadelta_epsilon",), "rmsprop-centered": ("rmsprop_centered",),
         "weight-decay": ("coupled_weight_decay",)}


def _differs(sa: dict, sb: dict, keys) -> list:
    return [k for k in keys if k in sa and k in sb and sa[k] != sb[k]] if keys != ("optimizer",) else (
        ["optimizer"] if sa.get("optimizer") and sb.get("optimizer") and sa["optimizer"] != sb["optimizer"] else [])


def _recomputed(c: Context, name: str):
    """Each side's step-0 update recomputed with its own settings, where the setting ``name`` is about differs."""
    if c.k != 0 or any(c.semantic(s) for s in ("gradients", "processed_gradients", "learning_rate")):
        return None
    sa, sb = c.settings(c.a), c.settings(c.b)
    keys = _differs(sa, sb, _KEYS[name])
    if not keys or (name != "optimizer-class" and sa.get("optimizer") != sb.get("optimizer")):
        return None
    lra, lrb = c.at(c.a, "learning_rate").get("lr"), c.at(c.b, "learning_rate").get("lr")
    if lra is None or lrb is None:
        return None
    grads = c.at(c.a, "processed_gradients") or c.at(c.a, "gradients")
    before = c.params_before(c.a)
    told = []
    for n, _, _ in c.diverging("parameters"):
        ua, ub = c.updates(c.a, n), c.updates(c.b, n)
        if ua is None or ub is None or n not in grads or n not in before:
            continue
        pa, pb = first_update(grads[n], before[n], sa, float(lra)), first_update(grads[n], before[n], sb, float(lrb))
        if pa is None or pb is None:
            return None
        if close(pa, pb, 10 * c.tol):
            continue  # the two settings cannot be told apart on this tensor
        if not (close(ua, pa, 10 * c.tol) and close(ub, pb, 10 * c.tol)):
            return None  # a prediction the numbers contradict: not this difference
        told.append(n)
    if not told:
        return None
    what = ", ".join(f"{k} {sa[k]!r} vs {sb[k]!r}" for k in keys)
    return 0.95, (f"{', '.join(told)}: gradients agree; the step-0 update recomputed from the reference's gradient with each "
                  f"side's own settings ({what}) matches each side: the reference's its own, the port's its own")


def _check(name):
    return lambda c: _recomputed(c, name)


def _check_betas(c: Context):
    """Slots m / v diverge over agreeing gradients and agreeing previous slots: each side's decay, solved per
    element from slot = beta prev + (1 - beta) target, is one number, and the two differ."""
    if c.semantic("gradients") or c.semantic("processed_gradients"):
        return None
    params = set(c.a.initial)
    grads = c.at(c.a, "processed_gradients") or c.at(c.a, "gradients")
    found = {}
    for n, xa, xb in c.diverging("slots"):
        kind = slot_kind(n, params)
        p = n[len(kind) + 1:] if n.startswith(kind + "/") else n[: -len(kind) - 1]
        if kind not in ("m", "v") or p not in grads:
            continue
        target = np.asarray(grads[p], float) ** (1 if kind == "m" else 2)
        prev_a = c.at(c.a, "slots", c.k - 1).get(n) if c.k else np.zeros_like(xa)
        prev_b = c.at(c.b, "slots", c.k - 1).get(n) if c.k else np.zeros_like(xb)
        if prev_a is None or prev_b is None or not close(prev_a, prev_b, c.tol):
            continue
        prev = np.asarray(prev_a, float)
        ba, bb = (ratio(x - target, prev - target, 10 * c.tol) for x in (xa, xb))
        if ba is None or bb is None or abs(ba - bb) <= 10 * c.tol:
            continue
        found.setdefault(kind, (ba, bb))
    if not found:
        return None
    said = "; ".join(f"beta{1 if k == 'm' else 2} {a:.6g} vs {b:.6g} (from the {k} slots)" for k, (a, b) in sorted(found.items()))
    return 0.95, (f"at step {c.k} the gradients and the previous slots agree while the moments differ, each side by one decay "
                  f"for every element: {said}: Adam's betas differ (torch's default (0.9, 0.999))")


def _check_decay_ratio(c: Context):
    """Coupled weight decay on one side under plain gradient descent: the updates differ by -lr wd w, one wd for
    every element of every diverging parameter; else the recomputation with each side's settings."""
    if c.semantic("gradients") or c.semantic("processed_gradients") or c.semantic("learning_rate"):
        return None
    lr = c.at(c.a, "learning_rate").get("lr")
    if "adaptive" not in optimizer_kinds(c) and lr:
        names = [n for n, _, _ in c.diverging("parameters")]
        d, w = [], []
        for n in names:
            ua, ub, w0 = c.updates(c.a, n), c.updates(c.b, n), c.params_before(c.a).get(n)
            if ua is None or ub is None or w0 is None or not close(c.params_before(c.b).get(n), w0, c.tol):
                return None
            d.append((ub - ua).ravel()), w.append(np.asarray(w0, float).ravel())
        r = ratio(np.concatenate(d), np.concatenate(w), 10 * c.tol) if d else None
        if r is not None and r != 0:
            side = "the port" if r < 0 else "the reference"
            return 0.9, (f"{', '.join(names)}: gradients agree; the updates differ by {r:.6g} x the weights, one factor for every "
                         f"element: {side} decays its weights by wd = {abs(r) / float(lr):.6g} inside the optimizer (coupled "
                         "weight decay: g + wd w) and the other does not")
    return _recomputed(c, "weight-decay")


def _check_lr_default(c: Context):
    """The learning rate differs from the first step by a factor of 1000: 1.0 (Keras 2.3's Adadelta default,
    torch's) vs 0.001 (tf_keras 2.x's), under Adadelta."""
    if c.k != 0:
        return None
    la, lb = c.at(c.a, "learning_rate").get("lr"), c.at(c.b, "learning_rate").get("lr")
    if la is None or lb is None:
        return None
    pair = sorted((float(la), float(lb)))
    if not (abs(pair[0] - 1e-3) <= 1e-9 and abs(pair[1] - 1.0) <= 1e-9):
        return None
    return 0.9, (f"under Adadelta the learning rate is {float(la):g} in the reference and {float(lb):g} in the port from the first "
                 "step: Keras 2.3's Adadelta() default 1.0 (and torch's) vs tf_keras 2.x's 0.001")


def _adadelta(c: Context) -> bool:
    return any(str(c.settings(t).get("optimizer", "")).lower() == "adadelta" for t in (c.a, c.b)) or \
        str(c.options().get("optimizer", "")).lower() == "adadelta"


def _two_optimizers(c: Context) -> bool:
    return all(c.settings(t).get("optimizer") for t in (c.a, c.b))


ADADELTA = Precondition("an Adadelta optimizer (a setting or the case's options)", _adadelta)
SETTINGS = Precondition("both ports' optimizer settings (class and hyper-parameters)", _two_optimizers)

_RECOMPUTE = ("the step-0 update recomputed from the gradient with each side's own settings matches each side, "
              "where the two predictions lie apart")

PITFALLS = [
    pitfall("optimizer-class", "Another optimizer class (TF1 Adadelta ported as SGD)", "optimizer", "P50", ["parameters"],
            "gradients agree; the optimizer settings name two classes; " + _RECOMPUTE,
            _check("optimizer-class"), requires=[SETTINGS],
            explanation="The port trains with another optimizer than the reference (GradientDescent for Adadelta, Adam for RMSprop...). "
                        "Every update differs from the first step, and no hyper-parameter fix brings them together.",
            tf="tf.compat.v1.train.AdadeltaOptimizer(lr): accum = rho accum + (1 - rho) g^2; d = sqrt(accum_update + eps) / sqrt(accum + eps) g",
            torch="torch.optim.SGD(lr): p -= lr g",
            fix="Use the same class: torch.optim.Adadelta(lr, rho, eps) for AdadeltaOptimizer (and map each hyper-parameter)."),
    pitfall("optimizer-rho", "Adadelta / RMSprop rho left at another framework's default", "optimizer", "P51", ["parameters"],
            "gradients agree; the ports' rho differ; " + _RECOMPUTE, _check("optimizer-rho"), requires=[SETTINGS],
            explanation="TF1 AdadeltaOptimizer's rho is 0.95 (Keras: 0.95), torch Adadelta's 0.9; TF RMSprop's rho is 0.9, torch's alpha 0.99. "
                        "Adadelta's first update is ~sqrt(eps / (1 - rho)) sign(g): rho moves it from the first step.",
            tf="accum = rho accum + (1 - rho) g^2   (Adadelta rho=0.95; RMSprop decay/rho=0.9)",
            torch="square_avg = rho sa + (1 - rho) g^2   (Adadelta rho=0.9; RMSprop alpha=0.99)",
            fix="Pass rho (Adadelta) / alpha (RMSprop) explicitly with the reference's value."),
    pitfall("optimizer-epsilon", "Adadelta epsilon left at torch's default 1e-6 (TF1 1e-8, Keras 1e-7)", "optimizer", "P51", ["parameters"],
            "gradients agree; the ports' Adadelta epsilons differ; " + _RECOMPUTE, _check("optimizer-epsilon"), requires=[SETTINGS],
            explanation="Adadelta's epsilon is inside both square roots, and its first update is ~sqrt(eps / (1 - rho)) sign(g): "
                        "eps 1e-6 (torch) instead of 1e-8 (TF1) makes the first steps 10x larger.",
            tf="d = sqrt(accum_update + eps) / sqrt(accum + eps) g   (TF1 eps=1e-8, Keras 1e-7)",
            torch="delta = sqrt(acc_delta + eps) / sqrt(square_avg + eps) g   (eps=1e-6)",
            fix="torch.optim.Adadelta(eps=<the reference's epsilon>)."),
    pitfall("adadelta-lr-default", "Adadelta learning rate: Keras 2.3 default 1.0 vs tf_keras 0.001", "optimizer", "P51", ["learning_rate"],
            "under Adadelta the learning rate differs from the first step, 1.0 on one side and 0.001 on the other",
            _check_lr_default, requires=[ADADELTA],
            explanation="Keras 2.3's Adadelta() defaults to lr=1.0 (as torch's Adadelta and the paper: no learning rate), tf_keras 2.x "
                        "and Keras 3 to 0.001: a Keras 2 program run under tf_keras, or ported from tf_keras' documentation, "
                        "trains 1000x slower.",
            tf="keras.optimizers.Adadelta(): learning_rate=1.0 (Keras 2.3), 0.001 (tf_keras 2.x, Keras 3)",
            torch="torch.optim.Adadelta(): lr=1.0",
            fix="State the learning rate explicitly on both sides (the reference program's own Keras version decides)."),
    pitfall("rmsprop-centered", "RMSprop centered on one side only", "optimizer", "P11", ["parameters"],
            "gradients agree; the ports' centered flags differ; " + _RECOMPUTE, _check("rmsprop-centered"), requires=[SETTINGS],
            explanation="centered=True divides by the variance estimate sqrt(ms - mg^2) instead of sqrt(ms): a larger step from the first one.",
            tf="RMSPropOptimizer(centered=True): mg = rho mg + (1 - rho) g;  var -= lr g / sqrt(ms - mg^2 + eps)",
            torch="RMSprop(centered=False): p -= lr g / (sqrt(square_avg) + eps)",
            fix="RMSprop(centered=True) (with grad_avg started at zeros, square_avg at ones for TF1)."),
    pitfall("adam-betas", "Adam betas left at torch's default (0.9, 0.999)", "optimizer", "P09", ["slots"],
            "gradients and previous slots agree; each side's moments decay by one beta for every element, and the betas differ",
            _check_betas, requires=[ADAM_SLOTS],
            explanation="At the first step Adam's bias-corrected update does not depend on the betas (m_hat = g, v_hat = g^2): the "
                        "moments m = (1 - beta1) g and v = (1 - beta2) g^2 differ first, the updates from the second step on.",
            tf="m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2   (the program's betas)",
            torch="Adam(betas=(0.9, 0.999)) by default",
            fix="Adam(betas=(beta1, beta2)) with the reference's values."),
    pitfall("weight-decay", "Weight decay on one side only (coupled, inside the optimizer)", "weight decay", "P14", ["parameters"],
            "gradients agree; under gradient descent the updates differ by -lr wd w with one wd for every element; else " + _RECOMPUTE,
            _check_decay_ratio,
            explanation="torch optimizers' weight_decay adds wd w to the gradient inside step() (not in the loss, not in .grad): a port "
                        "that adds weight_decay=5e-4 where the reference has none (or drops the reference's) changes every update.",
            tf="no decay: var -= lr g   (or loss + wd/2 sum w^2 where the program says so)",
            torch="SGD/Adam(weight_decay=wd): g <- g + wd p inside step()",
            fix="weight_decay=0 unless the reference decays; then match its form and scope (l2-loss-half, decay-on-bias, adamw-decoupled)."),
]
