"""Seed 002 by hand: the 784-300-100-10 ReLU MLP, its backward pass written out, and the
seed's two training procedures built from :mod:`parity.portkit.transforms`.

* ``clip_value``: gradient descent on ``clip_by_value(g, -c, c)``;
* ``global_norm``: gradient descent on ``clip_by_global_norm(g, c)`` (TF's coefficient
  ``c / max(norm, c)``, no epsilon);
* ``max_norm``: TF1 momentum (``accum = mu*accum + g; var -= lr*accum``) at the
  polynomially decayed learning rate of ``global_step``, then ``clip_by_norm(kernel, r,
  axes)`` on the hidden kernels, after the update.

The loss is ``tf.losses.softmax_cross_entropy``: the mean over the batch of
``-sum(y * log_softmax(logits))``.
"""

from __future__ import annotations

import numpy as np

from parity.portkit import transforms as T
from parity.oracle import framework_info
from parity.portkit.variants import build_variant

__all__ = ["build", "framework_info", "MlpPort", "LAYERS"]

#: The seed's layer names (``tf.layers.dense(..., name=...)``), in order.
LAYERS = ("hidden1", "hidden2", "output")


def _names():
    return [n for layer in LAYERS for n in (f"{layer}/kernel", f"{layer}/bias")]


class MlpPort:
    def __init__(self, case, dtype):
        self.case, self.dt = case, np.dtype(dtype)
        self.procedure = case.option("procedure", "clip_value")
        if self.procedure not in ("clip_value", "global_norm", "max_norm"):
            raise ValueError(f"unknown procedure {self.procedure!r}")
        self.p: dict[str, np.ndarray] = {}
        self.accum: dict[str, np.ndarray] = {}
        self.global_step = 0

    def parameters(self):
        return {k: v.copy() for k, v in self.p.items()}

    def load(self, params):
        self.p = {k: np.array(params[k], dtype=self.dt) for k in _names()}
        self.accum = {k: np.zeros_like(v) for k, v in self.p.items()}

    def _lr(self) -> np.ndarray:
        o = self.case.option
        if self.procedure != "max_norm":
            return self.dt.type(o("lr", 0.01))
        # Computed in the run's dtype, as TF computes the schedule from float tensors.
        dt = self.dt.type
        s = dt(min(self.global_step, o("decay_steps")))
        lr0, end = dt(o("lr", 0.01)), dt(o("end_lr", 0.001))
        return (lr0 - end) * (dt(1) - s / dt(o("decay_steps"))) ** dt(o("power", 1.0)) + end

    def step(self, batch):
        p, dt = self.p, self.dt
        x = np.asarray(batch["X"], dtype=dt)
        y = np.asarray(batch["y"], dtype=dt)
        # forward
        z1 = x @ p["hidden1/kernel"] + p["hidden1/bias"]
        h1 = np.maximum(z1, 0)
        z2 = h1 @ p["hidden2/kernel"] + p["hidden2/bias"]
        h2 = np.maximum(z2, 0)
        logits = h2 @ p["output/kernel"] + p["output/bias"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_softmax = shifted - lse
        n = dt.type(x.shape[0])
        loss = -(y * log_softmax).sum() / n
        # backward: d loss / d logits = (softmax * sum(y) - y) / n
        d = (np.exp(log_softmax) * y.sum(axis=1, keepdims=True) - y) / n
        grads = {"output/kernel": h2.T @ d, "output/bias": d.sum(axis=0)}
        d = (d @ p["output/kernel"].T) * (z2 > 0)
        grads.update({"hidden2/kernel": h1.T @ d, "hidden2/bias": d.sum(axis=0)})
        d = (d @ p["hidden2/kernel"].T) * (z1 > 0)
        grads.update({"hidden1/kernel": x.T @ d, "hidden1/bias": d.sum(axis=0)})
        grads = {k: grads[k].astype(dt) for k in _names()}
        out = {
            "forward": {"hidden1": h1, "hidden2": h2, "logits": logits},
            "loss": {"loss": np.asarray(loss, dtype=dt)},
            "gradients": grads,
        }
        o = self.case.option
        lr = self._lr()
        if self.procedure == "clip_value":
            grads, _ = T.clip_by_value(dt.type(o("clip_value", 1.0))).update(grads, ())
            out["processed_gradients"] = dict(grads)
        elif self.procedure == "global_norm":
            norm = np.asarray(T.global_norm(grads.values()), dtype=dt)
            grads, _ = T.clip_by_global_norm(dt.type(o("clip_norm"))).update(grads, ())
            out["processed_gradients"] = {**{k: v.astype(dt) for k, v in grads.items()}, "global_norm": norm}
        out["learning_rate"] = {"lr": np.asarray(lr, dtype=dt)}
        if self.procedure == "max_norm":
            updates, self.accum = T.momentum(dt.type(o("momentum", 0.9))).update(grads, self.accum, p, lr)
        else:
            updates, _ = T.sgd().update(grads, (), p, lr)
        self.p = T.apply_updates(p, updates)
        self.global_step += 1
        out["parameters"] = self.parameters()
        if self.procedure == "max_norm":
            out["slots"] = {f"{k}/momentum": v.copy() for k, v in self.accum.items()}
            out["state"] = {"global_step": np.asarray(self.global_step, dtype=np.int64)}
            radius, axes = dt.type(o("max_norm", 1.0)), o("max_norm_axes", 1)
            for layer in o("max_norm_layers", ("hidden1", "hidden2")):
                key = f"{layer}/kernel"
                self.p[key] = T.max_norm(self.p[key], radius, axes=axes)
            out["constrained"] = {f"{layer}/kernel": self.p[f"{layer}/kernel"].copy()
                                  for layer in o("max_norm_layers", ("hidden1", "hidden2"))}
        return out


def build(case, dtype, variant=None):
    """Build the numpy MLP port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MlpPort(case, dtype)
