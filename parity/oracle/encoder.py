"""Seed 000 by hand: forward, the backward pass written out, clip by value, gradient descent."""

from __future__ import annotations

import numpy as np

from parity.portkit import transforms as T
from parity.cases.catalog.seed000 import layer_names
from parity.oracle import framework_info
from parity.portkit.variants import build_variant

__all__ = ["build", "framework_info", "EncoderPort", "ALTERNATIVES"]


class EncoderPort:
    def __init__(self, case, dtype):
        self.case, self.dtype = case, np.dtype(dtype)
        self.names = layer_names(len(tuple(case.option("hidden", (16,)))))
        self.lr = self.dtype.type(case.option("lr", 1e-3))
        self.process = T.clip_by_value(self.dtype.type(case.option("clip_value", 4.5)))
        self.params = {}

    def parameters(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load(self, params):
        self.params = {k: np.array(v, dtype=self.dtype) for k, v in params.items()}

    def step(self, batch):
        p, x = self.params, np.asarray(batch["I"], dtype=self.dtype)
        acts, pre, h = {}, {}, x
        inputs = {}
        for wn, bn, on in self.names:
            inputs[wn] = h
            z = h @ p[wn] + p[bn]
            pre[on] = z
            h = z if on == "O2" else np.maximum(z, 0)
            acts[on] = h
        diff = x[0, 0] - 2.0 * acts["O2"][0, 0]
        loss = diff * diff
        # dL/dO2 is nonzero only at [0, 0]: d/dO2 (x - 2 O2)^2 = -4 (x - 2 O2)
        delta = np.zeros_like(acts["O2"])
        delta[0, 0] = -4.0 * diff
        grads = {}
        for wn, bn, on in reversed(self.names):
            if on != "O2":
                delta = delta * (pre[on] > 0)
            grads[wn] = inputs[wn].T @ delta
            grads[bn] = delta.sum(axis=0)
            delta = delta @ p[wn].T
        out = {
            "forward": acts,
            "loss": {"loss": np.asarray(loss)},
            "gradients": grads,
            "learning_rate": {"lr": np.asarray(self.lr)},
        }
        if self.process is not None:
            grads, _ = self.process.update(grads, ())
            out["processed_gradients"] = grads
        updates, _ = T.sgd().update(grads, (), p, self.lr)
        self.params = T.apply_updates(p, updates)
        out["parameters"] = self.parameters()
        return out


class Minimize(EncoderPort):
    """Gradient descent on the raw gradients: TF1's ``opt.minimize`` (equal where the clip does not bite)."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.process = None


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize}


def build(case, dtype, variant=None):
    """Build the numpy encoder port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return EncoderPort(case, dtype)
