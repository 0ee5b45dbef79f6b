"""Signatures of the training-loop pitfalls: learning-rate schedules, gradient clipping, max-norm
constraints, frozen parameters, accumulated gradients and initialisation (the rest of
``parity/cases/catalog/pitfalls_optim.py``)."""

from __future__ import annotations

import math

import numpy as np

from parity.pitfalls.base import Context, close, pitfall, ratio
from parity.pitfalls.requires import CONSTRAINED, LR_SCHEDULE, PROCESSED_GRADIENTS, STEP_BEFORE

__all__ = ["PITFALLS", "learning_rates"]


def learning_rates(c: Context, trace) -> np.ndarray:
    """The recorded learning rate per step (NaN where a step is not held)."""
    return np.array([float(c.at(trace, "learning_rate", s).get("lr", np.nan)) for s in range(c.n_steps())])


def _same(x, y, tol) -> bool:
    return bool(np.all(np.abs(np.asarray(x) - np.asarray(y)) <= 10 * tol * np.maximum(np.abs(x), np.abs(y))))


def scheduled_lr(options: dict, step: int):
    """The learning rate TF's schedule gives update ``step`` (0-based), from the case options; None if unknown.

    Reads the catalogue's form (``lr``, ``schedule: {kind: polynomial, decay_steps, end, power}``)
    and the property configs' (``optimizer: {lr}``, ``schedule: {kind: polynomial | exponential, ...}``).
    """
    s = options.get("schedule")
    opt = options.get("optimizer")
    lr = opt.get("lr") if isinstance(opt, dict) else options.get("lr")
    if not isinstance(s, dict) or not isinstance(lr, (int, float)):
        return None
    kind = s.get("kind")
    if kind == "polynomial":
        p = min(step, s["decay_steps"]) / s["decay_steps"]
        return (lr - s["end"]) * (1 - p) ** s.get("power", 1.0) + s["end"]
    if kind == "exponential":
        e = step / s["decay_steps"]
        return lr * s["rate"] ** (math.floor(e) if s.get("staircase") else e)
    if kind == "constant":
        return float(lr)
    return None


def _check_lr_off_by_one(c: Context):
    a, b = learning_rates(c, c.a), learning_rates(c, c.b)
    n = len(a)
    if n < 3 and n >= 1 and not np.isnan(a[0]) and not np.isnan(b[0]):
        # too few steps to see the shift in the traces: the run's own schedule predicts it
        lr0, lr1 = scheduled_lr(c.options(), 0), scheduled_lr(c.options(), 1)
        if lr0 is None or lr1 is None or _same(lr0, lr1, c.tol):
            return None
        for x, y, who in ((a, b, "B"), (b, a, "A")):
            if _same(x[0], lr0, c.tol) and _same(y[0], lr1, c.tol):
                return 0.9, (f"{who}'s first learning rate {y[0]:.6g} is the case's schedule at step 1, the other's {x[0]:.6g} at step 0: "
                             "the schedule is advanced before the update (scheduler.step() before optimizer.step(), or a 1-based step)")
        return None
    if n < 3 or np.isnan(a).any() or np.isnan(b).any():
        return None
    for x, y, who in ((a, b, "B"), (b, a, "A")):
        # (a constant rate is no schedule shifted: the side called shifted must change from step to step)
        if _same(y[: n - 1], x[1:n], c.tol) and not _same(x, y, c.tol) and not _same(y[1:n], y[: n - 1], c.tol):
            return 0.95, f"{who}'s learning rates {np.round(y[:n], 6).tolist()} are the other's shifted one step early: the schedule is advanced before the update (scheduler.step() before optimizer.step(), or a 1-based step)"
    return None


def _check_lr_end(c: Context):
    a, b = learning_rates(c, c.a), learning_rates(c, c.b)
    n = len(a)
    if n < 3 or np.isnan(a).any() or np.isnan(b).any() or not _same(a[0], b[0], c.tol):
        return None
    settled = _same(a[n - 1], a[n - 2], c.tol) and _same(b[n - 1], b[n - 2], c.tol)
    # settled: the last change of either rate is far smaller than the gap between the ends (a slowly
    # decaying rate against a constant one has not settled anywhere: corpus 04's legacy decay 1e-6)
    gap, moving = abs(a[n - 1] - b[n - 1]), max(abs(a[n - 1] - a[n - 2]), abs(b[n - 1] - b[n - 2]))
    if settled and gap > 10 * moving and not _same(a[n - 1], b[n - 1], c.tol) and min(a[n - 1], b[n - 1]) >= 0:
        return 0.9, f"schedules agree at step 0 and settle at different end values: A {a[n - 1]:.4g}, B {b[n - 1]:.4g}: end_learning_rate (TF polynomial_decay default 1e-4) vs torch PolynomialLR decaying to 0"
    return None


def _check_clip(c: Context):
    if c.semantic("gradients"):
        return None
    raw = c.at(c.a, "gradients")
    pa, pb = c.at(c.a, "processed_gradients"), c.at(c.b, "processed_gradients")
    ra, rb = {}, {}
    for n in pa:
        if n not in pb or n not in raw:
            continue  # an extra tensor (a recorded global norm...) is no evidence either way
        ra[n], rb[n] = ratio(pa[n], raw[n], c.tol), ratio(pb[n], raw[n], c.tol)
    if len(ra) < 2 or None in ra.values() or None in rb.values():
        return None
    spread = lambda d: np.ptp(list(d.values())) > 10 * c.tol * max(abs(v) for v in d.values())  # noqa: E731
    if spread(ra) != spread(rb):
        glob, per = ("A", "B") if spread(rb) else ("B", "A")
        fa = ", ".join(f"{k} {v:.3g}" for k, v in (rb if spread(rb) else ra).items())
        return 0.95, f"clipped/raw gradient: one common factor in {glob} (global norm), per-tensor factors in {per} ({fa}): per-tensor clipping (tf.clip_by_norm, Keras clipnorm) vs clip_by_global_norm"
    return None


def _norms(w, axis):
    return np.sqrt((np.asarray(w, float) ** 2).sum(axis=axis))


def _check_max_norm(c: Context, want: str):
    ca, cb = c.at(c.a, "constrained"), c.at(c.b, "constrained")
    pb = c.at(c.b, "parameters")
    # a norm "at the radius": a norm of a few float32 numbers is good to ~1e-6, and torch.renorm
    # divides by (norm + 1e-7) (1e-7 relative at radius ~1): max(1e-2 of the run's tolerance, 1e-6)
    # separates that from a norm one update off
    rt = max(c.tol * 1e-2, 1e-6)
    for n in ca:
        if n not in cb or np.ndim(ca[n]) != 2:
            continue
        wa, wb = np.asarray(ca[n], float), np.asarray(cb[n], float)
        radius = _radius(c)
        for ax in (0, 1):
            na = _norms(wa, ax)
            r = na.max()
            if radius is not None:
                if abs(r - radius) > rt * radius:
                    continue  # A is capped along ax: its largest norm sits at the run's radius
            elif np.sum(np.abs(na - r) <= rt * r) < 2:
                continue  # without the radius: several norms sit at a common cap
            nb, nb_other = _norms(wb, ax), _norms(wb, 1 - ax)
            if np.any(np.abs(nb - r) <= rt * r) and nb.max() <= r * (1 + rt):
                continue  # B is capped along the same axis
            on_other = abs(nb_other.max() - r) <= rt * r
            if want == "axis" and on_other:
                return 0.95, f"{n}: A's norms over axis {ax} are capped at {r:.4g}, B's over axis {1 - ax}: the max-norm constraint is applied along the other axis (torch.renorm dim is the kept dimension; Keras MaxNorm(axis=0) on [in, out] = renorm(W, 2, 0, r) on Linear's [out, in])"
            if want == "timing" and not on_other and n in pb and close(pb[n], wb, c.tol) and not _check_max_norm_missing(c):
                return 0.85, (f"{n}: A's norms over axis {ax} are capped at {r:.4g} after the step; B's constraint changes nothing after "
                              f"its update (norms {np.round(nb, 4).tolist()}): B applies the constraint before the update instead of after")
    return None


def _check_max_norm_missing(c: Context):
    """Parameters agree after the update; one side's constraint capped the norms (at the radius, along an axis), the
    other's changed nothing, and at the next step that side's update is the plain gradient step from its unconstrained
    weights (no constraint before the update either: not max-norm-timing)."""
    if c.semantic("parameters"):
        return None
    lr = c.at(c.a, "learning_rate", c.k + 1).get("lr")
    sgd = {str(c.settings(t).get("optimizer", "")) for t in (c.a, c.b)} == {"sgd"}
    for side, capped, free in (("the port", c.a, c.b), ("the reference", c.b, c.a)):
        cc, cf, pf = c.at(capped, "constrained"), c.at(free, "constrained"), c.at(free, "parameters")
        for n in cc:
            if n not in cf or n not in pf or np.ndim(cc[n]) != 2 or not close(cf[n], pf[n], c.tol):
                continue
            if close(cc[n], cf[n], c.tol):
                continue
            radius = _radius(c)
            axes = [ax for ax in (0, 1) if radius is not None and abs(_norms(cc[n], ax).max() - radius) <= max(c.tol * 1e-2, 1e-6) * radius]
            if not axes or _norms(cf[n], axes[0]).max() <= radius * (1 + c.tol):
                continue  # the capped side sits at the radius; the free side's norms exceed it
            upd, g = c.updates(free, n, c.k + 1), c.at(free, "gradients", c.k + 1).get(n)
            if upd is None or g is None or not sgd or lr is None or not close(upd, -float(lr) * np.asarray(g, float), 10 * c.tol):
                continue  # the next step must show no constraint at all on the free side (plain gradient descent)
            return 0.95, (f"{n}: parameters agree after the update; the other side's constraint caps the norms over axis {axes[0]} at "
                          f"{radius:g}, {side}'s leaves them at up to {_norms(cf[n], axes[0]).max():.4g}, and {side}'s next update is the "
                          f"plain step from its unconstrained weights: {side} applies no max-norm constraint")
    return None


def _radius(c: Context):
    """The max-norm radius the run was configured with (settings or case options), if it says."""
    for t in (c.a, c.b):
        mn = c.settings(t).get("max_norm")
        if isinstance(mn, dict) and isinstance(mn.get("radius"), (int, float)):
            return float(mn["radius"])
    mn = c.options().get("max_norm")
    if isinstance(mn, dict) and isinstance(mn.get("radius"), (int, float)):
        return float(mn["radius"])
    return c.hyper("max_norm")


def _check_frozen(c: Context):
    classes = [c.settings(t).get("optimizer") for t in (c.a, c.b)]
    if all(classes) and classes[0] != classes[1]:
        return None  # two optimizer classes: one side's steps may be far smaller without any parameter frozen
    ga = c.at(c.a, "gradients")
    scale = max((np.abs(np.asarray(g, float)).max() for g in ga.values()), default=0.0)
    for n, _, _ in c.diverging("parameters"):
        ua, ub = c.updates(c.a, n), c.updates(c.b, n)
        if ua is None or ub is None:
            continue
        if n in ga and np.abs(np.asarray(ga[n], float)).max() <= c.tol * scale:
            continue  # no gradient this step: frozen or not, it would not move (none-grad-skip's case)
        sa, sb = np.abs(ua).max(), np.abs(ub).max()
        # "not updated": moved by less than the run's tolerance times the other side's update
        if max(sa, sb) > 0 and min(sa, sb) <= c.tol * max(sa, sb):
            who = "A" if sa < sb else "B"
            return 0.95, f"{n} is not updated in {who} (frozen: var_list / trainable=False / requires_grad=False) but moves by {max(sa, sb):.3g} in the other"
    return None


def _check_zero_grad(c: Context):
    ga, gb, gb_prev = c.at(c.a, "gradients"), c.at(c.b, "gradients"), c.at(c.b, "gradients", c.k - 1)
    params = c.param_names()
    # the parameters' gradients (an extra recorded tensor, a global norm, is no evidence either way)
    common = [n for n in ga if n in gb and n in gb_prev and np.shape(ga[n]) == np.shape(gb[n]) and (n in params or not params)]
    moved = [n for n in common if np.abs(np.asarray(gb_prev[n], float)).max() > 0]
    hits = [n for n in moved if close(np.asarray(gb[n], float) - np.asarray(gb_prev[n], float), ga[n], c.tol * 10)]
    if hits and len(hits) == len(moved):
        return 0.95, f"step {c.k}: B's gradients = its step-{c.k - 1} gradients + the fresh ones ({', '.join(hits)}): gradients accumulate (optimizer.zero_grad() missing)"
    return None


def _check_init(c: Context):
    for n, va in c.a.initial.items():
        vb = c.b.initial.get(n)
        if vb is None or np.shape(va) != np.shape(vb) or close(va, vb, c.tol):
            continue
        va, vb = np.asarray(va, float), np.asarray(vb, float)
        if va.ndim == 2 and close(vb, va.T, c.tol) or va.ndim == 4 and close(vb, np.transpose(va, (1, 0, 2, 3)), c.tol):
            continue
        if va.ndim == 0:
            continue
        fan_in = va.shape[0] if va.ndim == 2 else np.prod(va.shape[:-1])
        bound = 1 / math.sqrt(fan_in)
        torchlike = np.abs(vb).max() <= bound * (1 + 1e-6)
        return (0.9 if torchlike else 0.6), (
            f"{n} differs already after load(): B's values " + (f"lie within torch's default +-1/sqrt(fan_in) = {bound:.3g} (kaiming_uniform(a=sqrt(5)))" if torchlike else "are not A's")
            + ": the weights were not copied, the framework's default initializer stayed (glorot_uniform in TF vs kaiming in torch)"
        )
    return None


PITFALLS = [
    pitfall("lr-schedule-end", "Learning-rate schedule end value (end_learning_rate vs 0)", "schedule", "P15", ["learning_rate"],
            "learning rates agree at step 0 and settle at different end values",
            _check_lr_end, requires=[LR_SCHEDULE],
            explanation="tf.train.polynomial_decay decays to end_learning_rate (default 1e-4) and stays there; torch PolynomialLR decays to 0.",
            tf="lr(k) = (lr0 - end) (1 - min(k, K)/K)^p + end", torch="PolynomialLR: lr(k) = lr0 (1 - min(k, K)/K)^p",
            fix="LambdaLR with TF's formula, stepped after optimizer.step()."),
    pitfall("lr-off-by-one", "Learning-rate schedule off by one step", "schedule", "P15", ["learning_rate"],
            "one port's learning-rate sequence is the other's shifted by one step",
            _check_lr_off_by_one, requires=[LR_SCHEDULE],
            explanation="TF evaluates the schedule at global_step before apply_gradients increments it (update k uses lr(k), k from 0). Calling scheduler.step() before optimizer.step() (or counting from 1) uses lr(k+1).",
            tf="update k uses lr(global_step = k), then global_step += 1", torch="optimizer.step(); scheduler.step()  (lr read from param_groups before step)",
            fix="Step the scheduler after the optimizer."),
    pitfall("clip-per-tensor", "Per-tensor vs global-norm gradient clipping", "clipping", "P19", ["processed_gradients"],
            "clipped/raw gradient ratio is one scalar for all tensors in one port, a different scalar per tensor in the other",
            _check_clip, requires=[PROCESSED_GRADIENTS],
            explanation="tf.clip_by_norm and Keras clipnorm clip each tensor by its own norm; tf.clip_by_global_norm and torch clip_grad_norm_ scale all tensors by one factor. (torch's clip_grad_norm_ also adds 1e-6 to the norm: 1e-7 relative, below float32 noise but visible in float64.)",
            tf="global: g * c / max(||all g||, c);  per-tensor: g * c / max(||g||, c)", torch="clip_grad_norm_(params, c): g * min(1, c / (||all g|| + 1e-6))",
            fix="Match the kind: global -> one factor from the global norm (computed exactly for float64 parity); per-tensor -> loop clip_grad_norm_([p], c)."),
    pitfall("max-norm-axis", "Max-norm constraint axis", "constraints", "P20", ["constrained"],
            "after the constraint, the reference's norms are capped along one axis and the port's along the other",
            lambda c: _check_max_norm(c, "axis"), requires=[CONSTRAINED],
            explanation="Keras MaxNorm(axis=0) on a Dense kernel [in, out] caps each output unit's incoming vector; torch.renorm's dim is the kept dimension, so on Linear's [out, in] it is dim=0.",
            tf="w = w * clip(||w||_axis0, 0, r) / ||w||_axis0  (after the update)", torch="torch.renorm(W, p=2, dim=0, maxnorm=r)  on W = kernel.T",
            fix="renorm dim 0 on Linear.weight (or compute the norms over dim 1), after optimizer.step()."),
    pitfall("max-norm-timing", "Max-norm constraint applied before the update", "constraints", "P20", ["parameters", "constrained"],
            "after the step the port's norms exceed the cap by about one update",
            lambda c: _check_max_norm(c, "timing"), requires=[CONSTRAINED],
            explanation="Keras and TF1 apply constraints after the gradient update; applying the renorm before optimizer.step() leaves every step's update unconstrained.",
            tf="apply_gradients, then constraint", torch="optimizer.step(); with no_grad(): renorm",
            fix="Apply the constraint after optimizer.step()."),
    pitfall("max-norm-missing", "Max-norm (or clamp) constraint on one side only", "constraints", "P20", ["constrained"],
            "parameters agree after the update; one side's constraint caps norms at the radius, the other's changes nothing, and its "
            "next update is the plain gradient step",
            _check_max_norm_missing, requires=[CONSTRAINED],
            explanation="Keras kernel_constraint=MaxNorm(r) (or a TF1 clip_by_norm / clip_by_value assign after each step) has no "
                        "counterpart in a torch layer's constructor: a port that does not apply it by hand after optimizer.step() "
                        "trains unconstrained weights.",
            tf="Dense(kernel_constraint=MaxNorm(r, axis=0)): after each update w = w * min(1, r / ||w||_axis0)",
            torch="(nothing: nn.Linear has no constraint argument)",
            fix="After optimizer.step(): with torch.no_grad(): W.copy_(torch.renorm(W, 2, 0, r)) (Linear.weight [out, in])."),
    pitfall("init-defaults", "Initializer defaults (weights not copied)", "init", "P30", ["forward"],
            "parameters differ already after load(); the port's lie within torch's default init bound",
            _check_init,
            explanation="Keras/TF1 Dense defaults to glorot_uniform with zero bias, torch Linear to kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) with a non-zero bias: a port that does not copy the weights starts elsewhere.",
            tf="glorot_uniform: U(+-sqrt(6 / (fan_in + fan_out))), bias 0", torch="U(+-1/sqrt(fan_in)) for weight and bias",
            fix="Copy every weight from the reference (or re-initialise with nn.init.xavier_uniform_ / zeros_)."),
    pitfall("trainable-var-list", "trainable=False / var_list vs requires_grad / parameter groups", "loop", "P34", ["parameters"],
            "a parameter is updated in one port and left unchanged in the other",
            _check_frozen,
            explanation="TF trains only var_list (or the TRAINABLE_VARIABLES collection); in torch every parameter given to the optimizer with requires_grad=True moves.",
            tf="opt.minimize(loss, var_list=[w2])", torch="w1.requires_grad_(False); optimizer over the trained parameters only",
            fix="requires_grad_(False) for the frozen tensors (and leave them out of the optimizer)."),
    pitfall("zero-grad", "Forgotten zero_grad: gradients accumulate", "loop", "P36", ["gradients"],
            "step 1 matches; from step 2 the port's gradients are the previous ones plus the fresh ones",
            _check_zero_grad, requires=[STEP_BEFORE],
            explanation="TF computes fresh gradients every step; torch adds into .grad until it is zeroed.",
            tf="grads = tape.gradient(loss, vars)  (fresh)", torch="optimizer.zero_grad(); loss.backward()",
            fix="Call optimizer.zero_grad() before each backward()."),
]
