"""The dense module by hand: forward, backward written out, transforms from parity.portkit.transforms.

The third voice of every dense property: the update rules are :mod:`parity.portkit.transforms`
(TF1's formulas), so "manual gradient descent" here is ``chain(clip, sgd)``.
"""

from __future__ import annotations

import numpy as np

from parity.portkit import transforms as T
from parity.strategies import learning_rate, normalize_config
from parity.oracle import framework_info
from parity.portkit.variants import build_variant

__all__ = ["build", "framework_info", "DensePort", "SLOTS"]

#: optimizer -> the slot names reported (``{param}/{slot}``), TF1's names.
SLOTS = {"sgd": (), "momentum": ("momentum",), "adam": ("m", "v"), "rmsprop": ("rms",), "adagrad": ("accumulator",)}

_ACT = {
    "linear": (lambda z: z, lambda z, a: np.ones_like(z)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
}


def _optimizer(opt: dict) -> T.Transform:
    name = opt["name"]
    if name == "sgd":
        return T.sgd()
    if name == "momentum":
        return T.momentum(opt["momentum"], nesterov=opt["nesterov"])
    if name == "adam":
        return T.adam(opt["beta1"], opt["beta2"], opt["epsilon"])
    if name == "rmsprop":
        return T.rmsprop(opt["decay"], opt["epsilon"])  # TF1 kernel form, ms from 1
    return T.adagrad(opt["initial_accumulator"])


def _clip(clip) -> T.Transform | None:
    if clip is None:
        return None
    return {"value": T.clip_by_value, "norm": T.clip_by_norm, "global_norm": T.clip_by_global_norm}[clip["kind"]](clip["limit"])


class DensePort:
    """A dense network trained by the numpy transforms (the oracle)."""

    def __init__(self, case, dtype):
        self.cfg = normalize_config(case.options)
        self.dtype = np.dtype(dtype)
        self.depth = len(self.cfg["widths"]) - 1
        self.names = [(f"dense{i}/kernel", f"dense{i}/bias") for i in range(self.depth)]
        self.opt = _optimizer(self.cfg["optimizer"])
        self.clip = _clip(self.cfg["clip"])
        self.params: dict = {}
        self.state = None
        self.t = 0

    def parameters(self):
        return {k: v.copy() for k, v in self.params.items()}

    def load(self, params):
        self.params = {k: np.array(params[k], dtype=self.dtype) for pair in self.names for k in pair}
        self.state = self.opt.init(self.params)
        self.t = 0

    def _slots(self) -> dict:
        name = self.cfg["optimizer"]["name"]
        if name == "adam":
            _, m, v = self.state
            return {**{f"{k}/m": x for k, x in m.items()}, **{f"{k}/v": x for k, x in v.items()}}
        if name == "sgd":
            return {}
        return {f"{k}/{SLOTS[name][0]}": x for k, x in self.state.items()}

    def step(self, batch):
        cfg, p = self.cfg, self.params
        x = np.asarray(batch["x"], dtype=self.dtype)
        y = np.asarray(batch["y"], dtype=self.dtype)
        act, dact = _ACT[cfg["activation"]]
        h, inputs, pre, outs, forward = x, [], [], [], {}
        for i, (kn, bn) in enumerate(self.names):
            inputs.append(h)
            z = h @ p[kn] + p[bn]
            h = z if i == self.depth - 1 else act(z)
            pre.append(z)
            outs.append(h)
            forward[f"dense{i}"] = h
        n = x.shape[0]
        if cfg["loss"] == "mse":
            diff = h - y
            total = np.sum(diff * diff)
            scale = 1.0 / diff.size if cfg["reduction"] == "mean" else 1.0
            loss = total * scale
            delta = 2.0 * diff * scale
        else:
            shifted = h - np.max(h, axis=1, keepdims=True)
            logp = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
            per = -np.sum(y * logp, axis=1)
            scale = 1.0 / n if cfg["reduction"] == "mean" else 1.0
            loss = np.sum(per) * scale
            delta = (np.exp(logp) * np.sum(y, axis=1, keepdims=True) - y) * scale
        grads = {}
        for i in reversed(range(self.depth)):
            kn, bn = self.names[i]
            if i != self.depth - 1:
                delta = delta * dact(pre[i], outs[i])
            grads[kn] = inputs[i].T @ delta
            grads[bn] = delta.sum(axis=0)
            delta = delta @ p[kn].T
        grads = {k: grads[k] for pair in self.names for k in pair}
        out = {"forward": forward, "loss": {"loss": np.asarray(loss)}, "gradients": dict(grads)}
        if self.clip is not None:
            grads, _ = self.clip.update(grads, ())
            out["processed_gradients"] = dict(grads)
        lr = self.dtype.type(learning_rate(cfg, self.t))
        out["learning_rate"] = {"lr": np.asarray(lr)}
        updates, self.state = self.opt.update(grads, self.state, p, lr)
        self.params = T.apply_updates(p, updates)
        self.t += 1
        out["parameters"] = self.parameters()
        slots = self._slots()
        if slots:
            out["slots"] = {k: np.array(v) for k, v in slots.items()}
        mn = cfg["max_norm"]
        if mn is not None:
            for kn, _ in self.names:
                self.params[kn] = T.max_norm(self.params[kn], self.dtype.type(mn["radius"]), axes=mn["axis"])
            out["constrained"] = {kn: self.params[kn].copy() for kn, _ in self.names}
        return out


def build(case, dtype, variant=None):
    """Build the numpy dense port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return DensePort(case, dtype)
