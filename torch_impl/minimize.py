"""Seed 004 in PyTorch: choosing what the optimizer trains.

The TF1 forms map to: ``var_list``/``trainable=False`` -> ``requires_grad=False`` (the
port), or equivalently (:data:`ALTERNATIVES`) a parameter left out of the optimizer
(:class:`LeftOutOfOptimizer`) or a buffer (:class:`Buffer`); ``tf.constant`` -> a plain
tensor. ``global_step`` is a counter the loop
increments after each update; the EMA mirrors ``tf.train.ExponentialMovingAverage``
with ``num_updates``: ``decay = min(decay, (1 + n) / (10 + n))`` with n the already
incremented step.
"""

from __future__ import annotations

from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "MinimizePort", "ALTERNATIVES"]


class MinimizePort:
    def __init__(self, case, dtype):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.kind = case.option("kind", "oscillate")
        self.module = t.nn.Module()
        dt = torch_dtype(dtype)
        for name, spec in case.params.items():
            self._register(name, t.zeros(spec.shape, dtype=dt, device=device()), spec.trainable)
        trained = [getattr(self.module, n) for n in case.trainable]
        # torch refuses an empty parameter list itself: "optimizer got an empty parameter list"
        self.opt = t.optim.SGD(trained, lr=case.option("lr", 1.0))
        self.global_step = 0 if case.option("global_step", False) else None
        self.decay = case.option("ema_decay")
        self.shadows = {}

    def _register(self, name, value, trainable):
        # A frozen TF1 variable is a parameter autograd does not track.
        self.module.register_parameter(name, self.t.nn.Parameter(value, requires_grad=trainable))

    def parameters(self):
        return {n: to_numpy(getattr(self.module, n)) for n in self.case.params}

    def load(self, params):
        with self.t.no_grad():
            for n in self.case.params:
                getattr(self.module, n).copy_(to_tensor(params[n], self.dtype))
        if self.decay is not None:
            self.shadows = {n: getattr(self.module, n).detach().clone() for n in self.case.trainable}

    def step(self, batch):
        t, m = self.t, self.module
        x, y = to_tensor(batch["x"], self.dtype), to_tensor(batch["y"], self.dtype)
        if self.kind == "oscillate":
            prediction = m.w * x
        elif self.kind == "sum":
            w3 = t.tensor(self.case.option("w3", 4.0), dtype=x.dtype, device=x.device)
            prediction = m.w1 * x + m.w2 * x + w3 * x
        else:
            raise ValueError(f"unknown kind {self.kind!r}")
        loss = (y - prediction) ** 2
        self.opt.zero_grad()
        loss.backward()
        out = {
            "forward": {"prediction": to_numpy(prediction)},
            "loss": {"loss": to_numpy(loss)},
            "gradients": {n: to_numpy(getattr(m, n).grad) for n in self.case.trainable},
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        self.opt.step()
        out["parameters"] = self.parameters()
        state = {}
        if self.global_step is not None:
            self.global_step += 1
            state["global_step"] = self.global_step
        if self.decay is not None:
            n = self.global_step
            # TF computes the decay in float32 whatever the variable dtype (see
            # parity.oracle.minimize.ema_one_minus_decay); mirror it, or float64 shadows
            # differ by ~1e-9 relative.
            d = t.tensor(self.decay, dtype=t.float32)
            if n is not None:
                nf = t.tensor(float(n), dtype=t.float32)
                d = t.minimum(d, (1.0 + nf) / (10.0 + nf))
            one_minus = (1.0 - d).to(torch_dtype(self.dtype)).to(device())
            with t.no_grad():
                for name, shadow in self.shadows.items():
                    shadow.sub_((shadow - getattr(m, name)) * one_minus)
                    state[f"{name}/ExponentialMovingAverage"] = to_numpy(shadow)
        if state:
            out["state"] = state
        return out


class LeftOutOfOptimizer(MinimizePort):
    """Frozen parameters keep ``requires_grad``; the optimizer is simply not given them."""

    def _register(self, name, value, trainable):
        self.module.register_parameter(name, self.t.nn.Parameter(value))


class Buffer(MinimizePort):
    """Frozen parameters are buffers: state of the module, never parameters."""

    def _register(self, name, value, trainable):
        if trainable:
            super()._register(name, value, trainable)
        else:
            self.module.register_buffer(name, value)


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"optimizer": LeftOutOfOptimizer, "buffer": Buffer}


def build(case, dtype, variant=None):
    """Build the torch seed-004 port; raises torch's own error when nothing can be trained."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MinimizePort(case, dtype)
