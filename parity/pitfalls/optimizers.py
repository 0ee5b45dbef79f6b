"""Signatures of the optimizer pitfalls: momentum forms, Nesterov, Adam's epsilon, RMSprop and
Adagrad initial state (``parity/cases/catalog/pitfalls_optim.py``; schedules, clipping, constraints and
the training loop are in :mod:`.loop`)."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, constant_ratio, pitfall, ratio
from parity.pitfalls.requires import ADAM_SLOTS, MOMENTUM_SLOTS, SLOTS, STEP_BEFORE, slot_kind

__all__ = ["PITFALLS", "slot_groups", "param_of_slot"]

_MOMENTUM_KINDS = ("momentum", "velocity", "momentum_buffer")


def slot_groups(slots: dict, params) -> dict:
    """Slot kind ("m", "v", "momentum"...) -> the slot names of that kind ("kind/param" or "param/kind")."""
    groups: dict = {}
    for n in slots:
        groups.setdefault(slot_kind(n, params), []).append(n)
    return groups


def param_of_slot(name: str, params) -> str:
    kind = slot_kind(name, params)
    return name[len(kind) + 1 :] if name.startswith(kind + "/") else name[: -len(kind) - 1]


def _check_dampening(c: Context):
    if c.semantic("gradients"):
        return None
    sa, sb = c.at(c.a, "slots"), c.at(c.b, "slots")
    params = c.a.initial
    for n in sa:
        if n not in sb or slot_kind(n, params) not in _MOMENTUM_KINDS:
            continue
        g = c.at(c.a, "gradients").get(param_of_slot(n, params))
        if g is None or not close(c.at(c.a, "slots", c.k - 1).get(n), c.at(c.b, "slots", c.k - 1).get(n), c.tol):
            continue
        r = constant_ratio(np.asarray(sb[n]) - np.asarray(sa[n]), g, c.tol)
        if r is None or not -1 < r < 0:
            continue
        d = c.hyper("dampening")
        if d is not None and d > 0 and abs(-r - d) > 10 * c.tol:
            continue  # the port reports another dampening than the one the buffers show
        return 0.95, (f"step {c.k - 1} matches; at step {c.k} the momentum buffers differ by {r:.4g} x gradient: B damps the "
                      f"new gradient by (1 - {-r:.4g}) from step 2 on (torch SGD dampening; TF has none)")
    return None


def _check_nesterov(c: Context):
    if c.semantic("gradients") or c.semantic("slots"):
        return None
    mu = c.hyper("momentum")
    names = [n for n, _, _ in c.diverging("parameters")]
    pairs = [(c.updates(c.a, n), c.updates(c.b, n)) for n in names]
    pairs = [(ua, ub) for ua, ub in pairs if ua is not None and ub is not None]
    if not pairs:
        return None
    # one ratio over every diverging parameter's update (a 1x1 network has one element per tensor)
    r = ratio(np.concatenate([ub.ravel() for _, ub in pairs]), np.concatenate([ua.ravel() for ua, _ in pairs]), c.tol)
    if r is None or r <= 0:
        return None
    big = r if r > 1 else 1 / r
    if not 1 + 10 * c.tol < big <= 2:
        return None
    if mu is not None and abs(big - 1 - mu) > 10 * c.tol:
        return None  # 1 + mu is what the run's momentum predicts at the first step
    return 0.9, (f"{', '.join(names)}: gradients and momentum buffers match but the update ratio is {r:.4g} for every element "
                 f"= 1 + mu with mu = {big - 1:.4g} at step {c.k}: Nesterov in one port only")


def _check_adam_eps(c: Context):
    sa = c.at(c.a, "slots")
    if c.semantic("slots") or c.semantic("gradients") or c.semantic("learning_rate"):
        return None
    for n, _, _ in c.diverging("parameters"):
        ua, ub = c.updates(c.a, n), c.updates(c.b, n)
        if ua is None or ub is None or constant_ratio(ub, ua, c.tol) is not None:
            continue
        v = next((np.asarray(sa[s], float) for s in sa if param_of_slot(s, c.a.initial) == n and slot_kind(s, c.a.initial).startswith("v")), None)
        vs = f"; sqrt(v) median {np.median(np.sqrt(np.abs(v))):.3g}" if v is not None else ""
        rel = np.max(np.abs(ub - ua)) / max(np.max(np.abs(ua)), 1e-300)
        return 0.9, (f"{n}: slots ({', '.join(sorted(slot_groups(sa, c.a.initial)))}) equal while the updates differ by up to {rel:.1%}, not by a common "
                     f"factor{vs}: Adam's epsilon is placed differently (TF epsilon-hat on sqrt(v) vs torch eps on sqrt(v_hat)): "
                     "torch eps = eps_tf / sqrt(1 - beta2^t)")
    return None


def slot_offsets(c: Context, prefix: str):
    """Per step from the first divergence: the common offset A - B of the ``prefix`` slots, while it is common."""
    out = []
    for k in range(c.k, c.n_steps()):
        sa, sb = c.at(c.a, "slots", k), c.at(c.b, "slots", k)
        names = [n for n in sa if slot_kind(n, c.a.initial) == prefix and n in sb]
        if not names:
            break  # not held (outside the window) or no such slots: what we have is the evidence
        d = np.concatenate([(np.asarray(sa[n], float) - np.asarray(sb[n], float)).ravel() for n in names])
        if np.ptp(d) > 10 * c.tol * max(np.abs(d).max(), 1e-300):
            break  # once the parameters differ the gradients do too: only the first steps are clean
        out.append(float(np.median(d)))
    return out or None


def _rmsprop_eps_placement(c: Context):
    """Slots equal, updates = -lr g / sqrt(ms + eps) on one side and -lr g / (sqrt(ms) + eps) on the other."""
    eps, lr = c.hyper("epsilon"), c.at(c.a, "learning_rate").get("lr")
    if eps is None or lr is None or eps <= 0 or c.semantic("slots"):
        return None
    sa, g = c.at(c.a, "slots"), c.at(c.a, "gradients")
    for s, ms in sa.items():
        n = param_of_slot(s, c.a.initial)
        if slot_kind(s, c.a.initial) != "rms" or n not in g:
            continue
        ua, ub = c.updates(c.a, n), c.updates(c.b, n)
        if ua is None or ub is None:
            continue
        ms, gn = np.asarray(ms, float), np.asarray(g[n], float)
        inside, outside = -float(lr) * gn / np.sqrt(ms + eps), -float(lr) * gn / (np.sqrt(ms) + eps)
        if close(inside, outside, 10 * c.tol):
            continue
        for x, y, tf_side in ((ua, ub, "A"), (ub, ua, "B")):
            if close(x, inside, 10 * c.tol) and close(y, outside, 10 * c.tol):
                return 0.85, (f"{n}: mean-square slots equal; {tf_side}'s update is -lr g / sqrt(ms + eps), the other's -lr g / (sqrt(ms) + eps) "
                              f"with eps = {eps:g} from the run's settings: epsilon inside the square root (TF1 RMSPropOptimizer) vs outside (torch RMSprop)")
    return None


def _check_rmsprop_init(c: Context):
    off = slot_offsets(c, "rms")
    if not off or abs(off[0]) <= 1e-12:
        return _rmsprop_eps_placement(c)
    if len(off) > 1 and not (abs(off[1]) < abs(off[0]) and constant_ratio(np.array(off[1:]), np.array(off[:-1]), 10 * c.tol) is not None):
        return None
    rho = off[1] / off[0] if len(off) > 1 else float("nan")
    return 0.9, (f"mean-square slots differ by the same offset in every element, {off[0]:.4g} then decaying x{rho:.4g} per step "
                 "(rho^t): the accumulator started at 1 in one port and 0 in the other (TF1 RMSPropOptimizer initialises it to ones)")


def _check_adagrad_init(c: Context):
    off = slot_offsets(c, "accumulator")
    if not off or abs(off[0]) <= 1e-12:
        return None
    return 0.9, (f"accumulators differ by a constant {off[0]:.4g} in every element at every step: different initial accumulator "
                 "values (TF initial_accumulator_value=0.1, torch 0)")


def _check_lr_change(c: Context):
    if c.semantic("learning_rate") or c.semantic("gradients"):
        return None
    prev, now = c.at(c.a, "learning_rate", c.k - 1).get("lr"), c.at(c.a, "learning_rate").get("lr")
    if prev is None or now is None or abs(float(now) - float(prev)) <= 10 * c.tol * abs(float(prev)):
        return None
    if any(c.semantic("parameters", None, s) for s in range(c.k)):
        return None
    what = "diverge" if c.first.stage == "parameters" else "match, and their momentum slots diverge,"
    return 0.9, (f"parameters match up to step {c.k - 1} and {what} at step {c.k}, the first step after the learning rate changes "
                 f"({float(prev):.4g} -> {float(now):.4g}) with equal gradients: the momentum form differs (Keras keeps lr inside the "
                 "velocity, torch multiplies the buffer by the current lr)")


PITFALLS = [
    pitfall("sgd-momentum-lr-change", "SGD momentum forms under a learning-rate change (Keras lr inside the velocity)", "optimizer", "P07", ["parameters", "slots"],
            "parameters match until the first step after the learning rate changes, then diverge (or, in float32, their momentum slots first) with equal gradients",
            _check_lr_change, requires=[MOMENTUM_SLOTS, STEP_BEFORE],
            explanation="Keras SGD keeps lr inside the velocity, torch (and TF1 MomentumOptimizer) multiply the accumulated buffer by the current lr. Equal at constant lr; after a change torch applies the new lr to the whole history.",
            tf="Keras: m = mu m - lr g;  w += m", torch="buf = mu buf + g;  p -= lr buf",
            fix="When lr changes, rescale torch's momentum_buffer by lr_old / lr_new (or write the Keras form)."),
    pitfall("sgd-dampening", "SGD dampening", "optimizer", "P07", ["parameters"],
            "step 1 identical, divergence from step 2; the momentum buffers differ by -dampening x gradient",
            _check_dampening, requires=[MOMENTUM_SLOTS, STEP_BEFORE],
            explanation="torch SGD(dampening=d) scales each new gradient by (1 - d) in the buffer, except at the first step; TF has no dampening.",
            tf="accum = mu accum + g;  var -= lr accum", torch="buf = mu buf + (1 - dampening) g  (from step 2);  p -= lr buf",
            fix="dampening=0 (torch's default)."),
    pitfall("nesterov", "Nesterov momentum toggled", "optimizer", "P08", ["parameters"],
            "step-1 updates differ by a constant ratio 1 + mu (mu: the ports' momentum where reported) with gradients and buffers equal",
            _check_nesterov, requires=[MOMENTUM_SLOTS],
            explanation="TF1 use_nesterov / Keras nesterov / torch nesterov are the same formula, but a port that drops the flag makes the first update lr g instead of lr (1 + mu) g.",
            tf="accum = mu accum + g;  var -= lr (g + mu accum)", torch="buf = mu buf + g;  p -= lr (g + mu buf)   (nesterov=True)",
            fix="SGD(momentum=mu, nesterov=True, dampening=0)."),
    pitfall("adam-epsilon", "Adam epsilon placement (epsilon-hat vs eps), in a small-gradient regime", "optimizer", "P09", ["parameters"],
            "slots m and v equal while the updates differ, not by a common factor",
            _check_adam_eps, requires=[ADAM_SLOTS],
            explanation="TF adds epsilon to sqrt(v) before the bias correction (the paper's epsilon-hat), torch after it. Equivalent only if eps_torch = eps_tf / sqrt(1 - beta2^t), which changes every step; invisible with O(1) gradients, large when sqrt(v) ~ eps (tiny inits, scaled losses, rare embedding rows).",
            tf="lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  var -= lr_t m / (sqrt(v) + eps)",
            torch="p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)",
            fix="Set param_groups[0]['eps'] = eps_tf / sqrt(1 - beta2**t) before each step t."),
    pitfall("rmsprop-init", "RMSprop: TF1 mean square starts at 1, epsilon inside the square root", "optimizer", "P11", ["parameters"],
            "mean-square slots differ by one offset in every element, decaying by rho each step; or, slots equal, the updates "
            "differ as eps inside vs outside sqrt predicts (eps: the run's own)",
            _check_rmsprop_init, requires=[SLOTS],
            explanation="TF1 RMSPropOptimizer initialises its rms slot to ones (and puts eps inside the sqrt); torch RMSprop starts square_avg at 0 (eps outside) and defaults alpha=0.99 vs TF's decay 0.9. The first ~1/(1 - rho) steps differ.",
            tf="ms = 1 initially;  ms = rho ms + (1 - rho) g^2;  var -= lr g / sqrt(ms + eps)",
            torch="square_avg = 0 initially;  square_avg = alpha sa + (1 - alpha) g^2;  p -= lr g / (sqrt(sa) + eps)",
            fix="RMSprop(alpha=decay, eps=0) with state['square_avg'] preset to ones."),
    pitfall("adagrad-init", "Adagrad initial accumulator 0.1 vs 0", "optimizer", "P12", ["parameters"],
            "accumulators differ by the same constant in every element at every step",
            _check_adagrad_init, requires=[SLOTS],
            explanation="TF starts the accumulator at initial_accumulator_value=0.1, torch at 0 (with eps 1e-10 outside the sqrt): the first steps are much larger in torch.",
            tf="acc = 0.1 + sum g^2;  var -= lr g / sqrt(acc)", torch="sum = 0 + sum g^2;  p -= lr g / (sqrt(sum) + 1e-10)",
            fix="Adagrad(initial_accumulator_value=0.1, eps=0)."),
]
