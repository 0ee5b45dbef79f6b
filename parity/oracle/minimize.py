"""Seed 004 by hand: the closed-form gradient dL/dw = 2 w x^2 - 2 y x, and plain GD."""

from __future__ import annotations

import numpy as np

from parity.oracle import framework_info
from parity.portkit.variants import build_variant

__all__ = ["build", "framework_info", "MinimizePort"]


class MinimizePort:
    def __init__(self, case, dtype):
        self.case, self.dt = case, np.dtype(dtype)
        self.kind = case.option("kind", "oscillate")
        if not case.trainable:
            raise ValueError("nothing to train: the case has no trainable parameter")
        self.lr = self.dt.type(case.option("lr", 1.0))
        self.global_step = 0 if case.option("global_step", False) else None
        self.decay = case.option("ema_decay")
        self.p, self.shadows = {}, {}

    def parameters(self):
        return {k: v.copy() for k, v in self.p.items()}

    def load(self, params):
        self.p = {k: np.array(v, dtype=self.dt) for k, v in params.items()}
        self.shadows = {k: self.p[k].copy() for k in self.case.trainable}

    def step(self, batch):
        x, y = self.dt.type(batch["x"]), self.dt.type(batch["y"])
        p = self.p
        if self.kind == "oscillate":
            pred = p["w"] * x
            # L = (y - w x)^2  =>  dL/dw = 2 w x^2 - 2 y x
            grads = {"w": 2 * p["w"] * x * x - 2 * y * x}
        else:
            pred = p["w1"] * x + p["w2"] * x + self.dt.type(self.case.option("w3", 4.0)) * x
            g = -2 * (y - pred) * x  # the same for w1 and w2
            grads = {n: np.asarray(g, dtype=self.dt) for n in self.case.trainable}
        out = {
            "forward": {"prediction": np.asarray(pred)},
            "loss": {"loss": np.asarray((y - pred) ** 2)},
            "gradients": grads,
            "learning_rate": {"lr": np.asarray(self.lr)},
        }
        for n, g in grads.items():
            p[n] = p[n] - self.lr * g
        out["parameters"] = self.parameters()
        state = {}
        if self.global_step is not None:
            self.global_step += 1
            state["global_step"] = np.asarray(self.global_step, dtype=np.int64)
        if self.decay is not None:
            step = self.dt.type(ema_one_minus_decay(self.decay, self.global_step))
            for k in self.shadows:
                self.shadows[k] = self.shadows[k] - (self.shadows[k] - p[k]) * step
                state[f"{k}/ExponentialMovingAverage"] = self.shadows[k].copy()
        if state:
            out["state"] = state
        return out


def ema_one_minus_decay(decay: float, num_updates: int | None) -> np.float32:
    """``1 - decay`` as ``tf.train.ExponentialMovingAverage`` computes it: in float32.

    TF builds the decay as a float32 tensor (``min(decay, (1+n)/(10+n))`` with n the
    already-incremented global step) whatever the variable's dtype, then casts
    ``1 - decay`` to it. A float64 port computing it in float64 differs by ~1e-9
    relative in the shadows (measured on seed004_global_step_ema: 1.3e-9).
    """
    d = np.float32(decay)
    if num_updates is not None:
        n = np.float32(num_updates)
        d = min(d, np.float32((np.float32(1.0) + n) / (np.float32(10.0) + n)))
    return np.float32(np.float32(1.0) - d)


def build(case, dtype, variant=None):
    """Build the numpy seed-004 port of ``case``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MinimizePort(case, dtype)
