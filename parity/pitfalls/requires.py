"""Preconditions: what the traces must hold before a signature may be proposed.

Each reads the traces (and the ports' recorded ``settings``) only, never the case's name or
the pitfall it was built to show. Evidence is structural where it can be (a BatchNorm leaves
per-channel moving statistics in the ``state`` stage; a dropout layer leaves an output equal
to its input with some entries zeroed and the rest scaled by one factor); settings keys a
port reports (``bn_epsilon``, ``dropout``, ``layernorm_epsilon``...) count too.
"""

from __future__ import annotations

import re

import numpy as np

from parity.pitfalls.base import Context, Precondition, constant_ratio

__all__ = [
    "BN_STATE", "DROPOUT", "LAYERNORM", "NORMALISED_COLUMNS", "MOMENTUM_SLOTS", "ADAM_SLOTS", "SLOTS", "FLOAT32",
    "LR_SCHEDULE", "PROCESSED_GRADIENTS", "CONSTRAINED", "STEP_BEFORE", "SEQUENCE", "IMAGES", "has_setting", "slot_kind",
]


def has_setting(ctx: Context, *keys: str) -> bool:
    return any(k in ctx.settings(t) for t in (ctx.a, ctx.b) for k in keys)


def _held_steps(ctx: Context):
    return [s for s in (ctx.k, ctx.k - 1, ctx.k + 1) if 0 <= s < ctx.n_steps()]


def _bn_state(ctx: Context) -> bool:
    """Per-channel moving statistics in the state stage: rank-1 state tensors that are not a
    trained parameter's shadow (EMA shadows carry the parameter's name; global_step is a scalar)."""
    if has_setting(ctx, "bn_epsilon", "bn_momentum"):
        return True
    for s in _held_steps(ctx):
        for trace in (ctx.a, ctx.b):
            trained = set(ctx.at(trace, "parameters", s))
            for n, v in ctx.at(trace, "state", s).items():
                if np.ndim(v) == 1 and not set(re.split(r"[/:.]", n)) & trained:
                    return True
    return False


def is_dropout_of(x, y, tol: float) -> bool:
    """Whether ``y`` is ``x`` with some entries zeroed and the others scaled by one factor >= 1."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.size < 4:
        return False
    zeroed = (y == 0) & (x != 0)
    kept = (y != 0) & (x != 0)
    if not zeroed.any() or kept.sum() < 2:
        return False
    r = constant_ratio(y[kept], x[kept], tol)
    return r is not None and r >= 1 - tol


def _dropout(ctx: Context) -> bool:
    """A dropout layer: a recorded output that is another output with entries zeroed, the rest scaled."""
    if has_setting(ctx, "dropout", "dropout_keep", "keep_prob"):
        return True
    for trace in (ctx.a, ctx.b):
        fwd = ctx.at(trace, "forward")
        items = [(n, np.asarray(v, float)) for n, v in fwd.items() if np.ndim(v) >= 2]
        for i, (_, y) in enumerate(items):
            if any(j != i and is_dropout_of(x, y, ctx.tol) for j, (_, x) in enumerate(items)):
                return True
    return False


def normalised(y, axis: int, tol: float, gamma=None, beta=None) -> bool:
    """Whether ``y`` is normalised along ``axis`` (0: per column over the batch, 1: per row):
    after removing the affine (gamma, beta), mean 0 and variance <= 1 in every slice."""
    y = np.asarray(y, float)
    y = y.reshape(-1, y.shape[-1])
    if axis == 1:
        y = y.T
    if y.shape[0] < 3:
        return False
    if gamma is not None and beta is not None:
        g, b = np.asarray(gamma, float), np.asarray(beta, float)
        if g.shape != (y.shape[1] if axis == 0 else y.shape[0],) or np.any(np.abs(g) < 1e-12):
            return False
        y = (y - (b if axis == 0 else b[:, None])) / (g if axis == 0 else g[:, None])
    scale = max(np.abs(y).max(), 1e-12)
    # a normalised slice has mean 0 to rounding (float32: ~1e-7 x the scale per element summed,
    # well under 1e-4; float64 far under 10 x its 1e-7 tolerance) and variance var/(var + eps) <= 1.
    # 1e-4 is what separates it from an un-normalised layer that happens to be nearly centred.
    mean_tol = min(10 * tol, 1e-4)
    return bool(np.all(np.abs(y.mean(0)) <= mean_tol * scale) and np.all(y.var(0) <= 1 + 10 * tol))


def _affine_pairs(ctx: Context, width: int):
    """(gamma, beta) candidates: pairs of rank-1 parameters of length ``width`` (gamma first, by name)."""
    params = ctx.params_before(ctx.a)
    vecs = sorted((n, np.asarray(v, float)) for n, v in params.items() if np.shape(v) == (width,))
    pairs = [(g, b) for gn, g in vecs for bn, b in vecs if gn != bn]
    return pairs + [(np.ones(width), np.zeros(width))]


def _normalised_somewhere(ctx: Context, axis: int) -> bool:
    for trace in (ctx.a, ctx.b):
        for _, y in ctx.at(trace, "forward").items():
            y = np.asarray(y, float)
            if y.ndim < 2 or y.shape[-1] < 2:
                continue
            width = y.shape[-1]
            for g, b in _affine_pairs(ctx, width):
                if axis == 1:
                    # LayerNorm's gamma/beta act per column: undo them, then each row is normalised
                    z = (y.reshape(-1, width) - b) / np.where(np.abs(g) < 1e-12, 1.0, g)
                    if normalised(z, 1, ctx.tol):
                        return True
                elif normalised(y, 0, ctx.tol, g, b):
                    return True
    return False


def _layernorm(ctx: Context) -> bool:
    """A LayerNorm: an output whose rows, after a (gamma, beta) of its width, have mean 0 and variance <= 1."""
    return has_setting(ctx, "layernorm_epsilon") or _normalised_somewhere(ctx, 1)


def slot_kind(name: str, params) -> str:
    """The kind of a slot named ``kind/param`` (the pitfall ports) or ``param/kind`` (TF2 Keras)."""
    for p in sorted(params, key=len, reverse=True):
        if name.endswith("/" + p):
            return name[: -len(p) - 1]
        if name.startswith(p + "/"):
            return name[len(p) + 1 :]
    return name.partition("/")[0]


def _slot_kinds(ctx: Context) -> set:
    params = set(ctx.a.initial) | set(ctx.b.initial)
    return {slot_kind(n, params) for t in (ctx.a, ctx.b) for s in _held_steps(ctx) for n in ctx.at(t, "slots", s)}


_ADAPTIVE = ("adam", "nadam", "rmsprop", "adagrad", "adadelta", "adamax", "ftrl", "lamb", "lion", "lars", "adafactor")


def optimizer_kinds(ctx: Context) -> set:
    """What the run's settings call its optimizer: {"adaptive"} (Adam, RMSprop, Adagrad...), {"sgd"} (SGD,
    MomentumOptimizer, ApplyMomentum), both, or empty where no port names it (the case options count too)."""
    names = [ctx.settings(t).get("optimizer") for t in (ctx.a, ctx.b)]
    o = ctx.options().get("optimizer")
    names.append(o.get("name") if isinstance(o, dict) else o)
    kinds = set()
    for name in names:
        low = str(name or "").lower()
        if any(a in low for a in _ADAPTIVE):
            kinds.add("adaptive")
        elif "sgd" in low or "momentum" in low or "gradientdescent" in low:
            kinds.add("sgd")
    return kinds


def _momentum(ctx: Context) -> bool:
    """Momentum SGD: not an optimizer the settings call adaptive (Adam keeps a first moment, not a momentum
    buffer; TF1 ApplyAdam carries a ``use_nesterov`` attribute too), a momentum > 0 where reported, else
    momentum slots or a momentum-form setting."""
    if "adaptive" in optimizer_kinds(ctx) or _adam(ctx):
        return False
    mus = [v for v in (ctx.settings(t).get("momentum") for t in (ctx.a, ctx.b)) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if mus:
        return any(v > 0 for v in mus)
    return bool(_slot_kinds(ctx) & {"momentum", "velocity", "momentum_buffer", "accum"}) or has_setting(ctx, "momentum_form", "nesterov")


def _adam(ctx: Context) -> bool:
    named = [str(ctx.settings(t).get("optimizer", "")).lower() for t in (ctx.a, ctx.b)]
    if any(named) and not any(n.startswith("adam") or n == "nadam" for n in named):
        return False  # the settings name the optimizers, and neither is Adam-like (Adadelta keeps two slots too)
    kinds = _slot_kinds(ctx)
    return len(kinds) >= 2 or has_setting(ctx, "adam_epsilon") or any(
        str(ctx.settings(t).get("optimizer", "")).lower() in ("adam", "adamw") for t in (ctx.a, ctx.b))


def _lr_schedule(ctx: Context) -> bool:
    if isinstance(ctx.options().get("schedule"), dict):
        return True
    lrs = [ctx.at(ctx.a, "learning_rate", s).get("lr") for s in range(ctx.n_steps())]
    lrs = [float(v) for v in lrs if v is not None]
    return len(lrs) >= 3


def _forward_rank(rank: int):
    def test(ctx: Context) -> bool:
        return any(np.ndim(v) == rank for t in (ctx.a, ctx.b) for v in ctx.at(t, "forward").values()) or any(
            np.ndim(v) == rank for v in ctx.at(ctx.a, "inputs").values())
    return test


BN_STATE = Precondition("BatchNorm moving statistics (rank-1 state tensors) or a BatchNorm setting", _bn_state)
NORMALISED_COLUMNS = Precondition("an output normalised per channel over the batch (a BatchNorm in training mode)",
                                  lambda c: _normalised_somewhere(c, 0))
DROPOUT = Precondition("a dropout layer (an output equal to another with entries zeroed, the rest scaled) or a dropout setting", _dropout)
LAYERNORM = Precondition("a LayerNorm (an output normalised per row) or a layernorm_epsilon setting", _layernorm)
MOMENTUM_SLOTS = Precondition("an SGD optimizer with momentum (a momentum setting > 0, else momentum slots; never one the "
                               "settings call Adam, RMSprop, Adagrad...)", _momentum)
ADAM_SLOTS = Precondition("an Adam-like optimizer (two slot kinds, e.g. m and v, or an adam setting)", _adam)
SLOTS = Precondition("optimizer slots in the traces", lambda c: bool(_slot_kinds(c)))
FLOAT32 = Precondition("a float32 run (TF32 leaves float64 untouched)", lambda c: c.dtype == "float32" or c.a.dtype == "float32")
LR_SCHEDULE = Precondition("a learning rate recorded at 3 or more steps, or a schedule in the case options", _lr_schedule)
PROCESSED_GRADIENTS = Precondition("processed (clipped) gradients in the traces",
                                   lambda c: bool(c.at(c.a, "processed_gradients")) and bool(c.at(c.b, "processed_gradients")))
CONSTRAINED = Precondition("constrained parameters in the traces", lambda c: bool(c.at(c.a, "constrained")))
STEP_BEFORE = Precondition("the step before the first divergence in the traces", lambda c: c.k >= 1)
SEQUENCE = Precondition("a sequence input [batch, time, features]", _forward_rank(3))
IMAGES = Precondition("an image tensor [batch, height, width, channels]", _forward_rank(4))
