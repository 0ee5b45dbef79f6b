"""Gradient processing and update rules as small composable numpy transforms (optax-style).

A transform is a pair of pure functions: ``init(params) -> state`` and
``update(grads, state, params, lr) -> (updates, state)``. ``chain`` composes them and
:func:`apply_updates` is the only place parameters change. They are the numpy oracle:
"manual gradient descent" is ``chain(clip_by_value(c), sgd())`` and must equal each
framework's optimizer. Formulas follow TF1's optimizers (PITFALLS P07-P12, P17-P20).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = [
    "Transform",
    "chain",
    "apply_updates",
    "clip_by_value",
    "clip_by_norm",
    "clip_by_global_norm",
    "global_norm",
    "sgd",
    "momentum",
    "adam",
    "rmsprop",
    "adagrad",
    "max_norm",
    "polynomial_decay",
]

Params = dict  # name -> ndarray


@dataclass(frozen=True)
class Transform:
    """An update rule: ``init(params) -> state``; ``update(grads, state, params, lr) -> (updates, state)``."""

    init: Callable
    update: Callable


def _stateless(fn) -> Transform:
    return Transform(lambda params: (), lambda g, s, p=None, lr=None: (fn(g), s))


def chain(*transforms: Transform) -> Transform:
    """Apply transforms in order; ``chain(a, b)`` equals ``b`` applied after ``a``."""

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(grads, state, params=None, lr=None):
        new = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params, lr)
            new.append(s)
        return grads, tuple(new)

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    """Return ``params + updates`` (the only place parameters change)."""
    return {k: params[k] + updates[k] if k in updates else params[k] for k in params}


def clip_by_value(limit: float) -> Transform:
    """``tf.clip_by_value(g, -limit, limit)`` = ``clip_grad_value_``."""
    return _stateless(lambda g: {k: np.clip(v, -limit, limit) for k, v in g.items()})


def clip_by_norm(limit: float, axes=None) -> Transform:
    """Per-tensor ``tf.clip_by_norm``: ``t * limit / max(||t||, limit)``."""

    def fn(g):
        out = {}
        for k, v in g.items():
            n = np.sqrt(np.sum(v * v, axis=axes, keepdims=axes is not None))
            out[k] = v * limit / np.maximum(n, limit)
        return out

    return _stateless(fn)


def global_norm(tensors) -> float:
    """The global L2 norm of a collection of tensors."""
    return float(np.sqrt(sum(float(np.sum(np.asarray(v, dtype=np.float64) ** 2)) for v in tensors)))


def clip_by_global_norm(limit: float, *, torch_eps: float = 0.0) -> Transform:
    """``tf.clip_by_global_norm`` (``torch_eps=1e-6`` gives ``clip_grad_norm_``'s coefficient)."""

    def fn(g):
        n = global_norm(g.values())
        if torch_eps:
            coef = min(limit / (n + torch_eps), 1.0)
        else:
            coef = limit / max(n, limit)
        return {k: v * coef for k, v in g.items()}

    return _stateless(fn)


def sgd() -> Transform:
    """Plain gradient descent: ``update = -lr * g``."""
    return Transform(lambda params: (), lambda g, s, p=None, lr=None: ({k: -lr * v for k, v in g.items()}, s))


def momentum(mu: float, *, nesterov: bool = False) -> Transform:
    """TF1 ``MomentumOptimizer``: ``accum = mu*accum + g``; ``update = -lr*accum`` (or Nesterov)."""

    def init(params):
        return {k: np.zeros_like(v) for k, v in params.items()}

    def update(g, accum, p=None, lr=None):
        accum = {k: mu * accum[k] + v for k, v in g.items()}
        if nesterov:
            return {k: -lr * (v + mu * accum[k]) for k, v in g.items()}, accum
        return {k: -lr * accum[k] for k in g}, accum

    return Transform(init, update)


def adam(beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Transform:
    """TF1 ``AdamOptimizer`` (epsilon-hat form): ``lr_t = lr*sqrt(1-b2^t)/(1-b1^t)``."""

    def init(params):
        return (0, {k: np.zeros_like(v) for k, v in params.items()}, {k: np.zeros_like(v) for k, v in params.items()})

    def update(g, state, p=None, lr=None):
        t, m, v = state
        t += 1
        m = {k: beta1 * m[k] + (1 - beta1) * x for k, x in g.items()}
        v = {k: beta2 * v[k] + (1 - beta2) * x * x for k, x in g.items()}
        lr_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        return {k: -lr_t * m[k] / (np.sqrt(v[k]) + eps) for k in g}, (t, m, v)

    return Transform(init, update)


def rmsprop(decay: float = 0.9, eps: float = 1e-10, initial: float = 1.0) -> Transform:
    """TF1 ``RMSPropOptimizer`` without momentum: ``ms`` starts at ``initial`` (1.0 in TF1)."""

    def init(params):
        return {k: np.full_like(v, initial) for k, v in params.items()}

    def update(g, ms, p=None, lr=None):
        # TF1's kernel form ms += (g^2 - ms)(1 - decay): algebraically the textbook
        # decay*ms + (1-decay)*g^2, but it rounds differently (17% apart in float32 for
        # |g| ~ 2e-4 with ms starting at 1; 3.7e-10 in float64).
        ms = {k: ms[k] + (x * x - ms[k]) * (1 - decay) for k, x in g.items()}
        return {k: -lr * x / np.sqrt(ms[k] + eps) for k, x in g.items()}, ms

    return Transform(init, update)


def adagrad(initial: float = 0.1) -> Transform:
    """TF1 ``AdagradOptimizer``: ``acc += g^2``; ``update = -lr*g/sqrt(acc)``."""

    def init(params):
        return {k: np.full_like(v, initial) for k, v in params.items()}

    def update(g, acc, p=None, lr=None):
        acc = {k: acc[k] + x * x for k, x in g.items()}
        return {k: -lr * x / np.sqrt(acc[k]) for k, x in g.items()}, acc

    return Transform(init, update)


def max_norm(weights: np.ndarray, radius: float, axes=1) -> np.ndarray:
    """``tf.clip_by_norm(weights, radius, axes=axes)``: rescale slices whose norm exceeds radius."""
    n = np.sqrt(np.sum(weights * weights, axis=axes, keepdims=True))
    return weights * radius / np.maximum(n, radius)


def polynomial_decay(lr: float, step: int, decay_steps: int, end: float = 1e-4, power: float = 1.0) -> float:
    """``tf.compat.v1.train.polynomial_decay`` (cycle=False) at ``step``."""
    s = min(step, decay_steps)
    return (lr - end) * (1 - s / decay_steps) ** power + end
