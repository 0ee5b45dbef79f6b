"""Seed 003 in PyTorch: the BatchNorm + dropout convnet, trained in ``model.train()``.

The learning-phase pitfall's torch form is a model left in ``eval()``: BatchNorm then
normalises with its running statistics and dropout is the identity. That port, and stock
``nn.BatchNorm2d``'s unbiased running variance, live in ``torch_impl/mistakes/bn_convnet.py``.

Conventions mapped to the Keras reference (the case's options, Keras convention):

* BatchNorm momentum: torch's ``momentum`` is ``1 - keras_momentum`` (0.99 -> 0.01);
  epsilon 1e-3 (torch's default is 1e-5);
* running variance: Keras 3 and non-fused tf_keras BatchNorm update the moving variance
  with the *biased* batch variance, ``nn.BatchNorm2d`` with the unbiased one; the default
  port's :class:`KerasBatchNorm2d` updates its buffers the Keras way
  (``moving -= (moving - batch) * (1 - momentum)``) (PITFALLS P03);
* SGD: torch keeps ``buf = mu*buf + g`` and steps ``p -= lr*(g + mu*buf)`` (Nesterov);
  Keras keeps the velocity ``m = mu*m - lr*g``. The slots are reported in the Keras
  convention, ``-lr * buf`` (exact for a constant lr);
* layout: activations are reported NHWC, the conv kernel HWIO, the dense kernel
  ``[in, out]`` with its rows in Keras' (h, w, c) flatten order; the dropout mask arrives
  in that order and is permuted to torch's (c, h, w).
"""

from __future__ import annotations

import functools

import numpy as np

from parity.portkit.layout import conv_from_torch, conv_to_torch, flatten_permutation, nchw_to_nhwc

from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "BnConvnetPort"]
LAYERS = ("conv", "bn", "relu", "pool", "flatten", "dropout", "dense")


@functools.lru_cache(maxsize=None)
def _modules(t):
    """Define the module classes once torch is imported (torch is imported lazily)."""

    class KerasBatchNorm2d(t.nn.BatchNorm2d):
        """``nn.BatchNorm2d`` whose running variance follows Keras: the biased batch variance."""

        def forward(self, x):
            if not self.training:
                return super().forward(x)
            y = t.nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            with t.no_grad():
                mean = x.mean(dim=(0, 2, 3))
                var = x.var(dim=(0, 2, 3), unbiased=False)
                self.running_mean.sub_((self.running_mean - mean) * self.momentum)
                self.running_var.sub_((self.running_var - var) * self.momentum)
                self.num_batches_tracked.add_(1)
            return y

    class MaskedDropout(t.nn.Module):
        """Inverted dropout with a given keep mask; the identity in eval(), like ``nn.Dropout``."""

        def __init__(self, keep: float):
            super().__init__()
            self.keep = keep

        def forward(self, x, mask):
            return x * mask / self.keep if self.training else x

    class Net(t.nn.Module):
        def __init__(self, filters, features, classes, keep, bn_momentum, eps, batch_norm):
            super().__init__()
            self.conv = t.nn.Conv2d(3, filters, 3, padding=1, bias=False)  # SAME, stride 1, k 3
            self.bn = batch_norm(filters, eps=eps, momentum=bn_momentum)
            self.pool = t.nn.MaxPool2d(2)
            self.dropout = MaskedDropout(keep)
            self.dense = t.nn.Linear(features, classes)

        def forward(self, x, mask):
            acts = {}
            acts["conv"] = h = self.conv(x)
            acts["bn"] = h = self.bn(h)
            acts["relu"] = h = t.relu(h)
            acts["pool"] = h = self.pool(h)
            acts["flatten"] = h = t.flatten(h, 1)
            acts["dropout"] = h = self.dropout(h, mask)
            logits = self.dense(h)
            acts["dense"] = t.softmax(logits, dim=-1)
            return logits, acts

    return Net, KerasBatchNorm2d


class BnConvnetPort:
    def __init__(self, case, dtype):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        o = case.option
        self.filters, self.classes, self.keep = o("filters", 8), o("classes", 10), o("keep", 0.75)
        side = case.data.args.get("shape", (32, 32, 3))[0] // 2
        self.pooled = (side, side, self.filters)
        features = side * side * self.filters
        self.keras_momentum = o("bn_momentum", 0.99)
        self.bn_momentum = 1.0 - self.keras_momentum  # torch convention: weight of the new batch
        self.eps = o("bn_epsilon", 1e-3)
        Net, KerasBatchNorm2d = _modules(t)
        self.model = Net(self.filters, features, self.classes, self.keep, self.bn_momentum, self.eps,
                         batch_norm=self._batch_norm(KerasBatchNorm2d)).to(dtype=torch_dtype(dtype), device=device())
        self.lr, self.mu = o("lr", 0.1), o("momentum", 0.9)
        self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr, momentum=self.mu, nesterov=o("nesterov", True))
        # flat_torch = flat_keras[perm]: the dense rows and the masks are permuted with it.
        self.perm = flatten_permutation(*self.pooled)
        self.inverse = np.argsort(self.perm)
        self.model.train()  # BatchNorm on batch statistics, dropout on: what Keras' fit does

    def _batch_norm(self, keras_batch_norm):
        """Return the BatchNorm class: Keras' moving variance is the biased batch variance (P03)."""
        return keras_batch_norm

    def settings(self):
        return {
            "bn_momentum": float(self.bn_momentum),
            "bn_momentum_convention": "torch",
            "bn_epsilon": float(self.eps),
            "bn_running_var": "biased",
            "dropout_detail": f"harness mask, x*mask/{self.keep} in train(), identity in eval()",
            "mode": "train",
            "sgd": {"lr": self.lr, "momentum": self.mu, "nesterov": True},
            "slots": "Keras velocity convention: -lr * momentum_buffer",
        }

    def _tensors(self):
        m = self.model
        return {
            "conv/kernel": (m.conv.weight, "conv"),
            "bn/gamma": (m.bn.weight, None),
            "bn/beta": (m.bn.bias, None),
            "dense/kernel": (m.dense.weight, "dense"),
            "dense/bias": (m.dense.bias, None),
        }

    def _from_torch(self, value, kind):
        arr = to_numpy(value)
        if kind == "conv":
            return conv_from_torch(arr)
        if kind == "dense":
            return np.ascontiguousarray(arr.T[self.inverse])  # [out, in(c,h,w)] -> [in(h,w,c), out]
        return arr

    def _to_torch(self, arr, kind):
        arr = np.asarray(arr)
        if kind == "conv":
            return conv_to_torch(arr)
        if kind == "dense":
            return np.ascontiguousarray(arr[self.perm].T)
        return arr

    def _state(self):
        return {"bn/moving_mean": to_numpy(self.model.bn.running_mean),
                "bn/moving_variance": to_numpy(self.model.bn.running_var)}

    def parameters(self):
        out = {n: self._from_torch(p, kind) for n, (p, kind) in self._tensors().items()}
        out.update(self._state())
        return out

    def load(self, params):
        with self.t.no_grad():
            for n, (p, kind) in self._tensors().items():
                p.copy_(to_tensor(self._to_torch(params[n], kind), self.dtype))
            self.model.bn.running_mean.copy_(to_tensor(params["bn/moving_mean"], self.dtype))
            self.model.bn.running_var.copy_(to_tensor(params["bn/moving_variance"], self.dtype))

    def step(self, batch):
        t = self.t
        x = to_tensor(np.ascontiguousarray(np.transpose(batch["x"], (0, 3, 1, 2))), self.dtype)
        y = to_tensor(batch["y"], self.dtype)
        mask = to_tensor(np.asarray(batch["keep_mask"])[:, self.perm], self.dtype)
        logits, acts = self.model(x, mask)
        # Keras' CategoricalCrossentropy on softmax outputs, mean over the batch.
        loss = t.nn.functional.cross_entropy(logits, y)
        self.opt.zero_grad()
        loss.backward()
        tensors = self._tensors()
        out = {
            "forward": {k: self._activation(k, v) for k, v in acts.items()},
            "loss": {"loss": to_numpy(loss)},
            "gradients": {n: self._from_torch(p.grad, kind) for n, (p, kind) in tensors.items()},
            "learning_rate": {"lr": np.asarray(self.opt.param_groups[0]["lr"], dtype=self.dtype)},
        }
        self.opt.step()
        out["parameters"] = {n: self._from_torch(p, kind) for n, (p, kind) in tensors.items()}
        out["slots"] = {
            f"{n}/momentum": self._from_torch(-self.lr * self.opt.state[p]["momentum_buffer"], kind)
            for n, (p, kind) in tensors.items()
        }
        out["state"] = self._state()
        return out

    def _activation(self, name, value):
        arr = to_numpy(value)
        if arr.ndim == 4:
            return nchw_to_nhwc(arr)
        if name in ("flatten", "dropout"):
            return np.ascontiguousarray(arr[:, self.inverse])  # (c, h, w) order -> (h, w, c)
        return arr


def build(case, dtype, variant=None):
    """Build the torch seed-003 port (``model.train()``)."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return BnConvnetPort(case, dtype)
