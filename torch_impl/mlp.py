"""Seed 002 in PyTorch: the 784-300-100-10 ReLU MLP, clipping, momentum with the TF1
polynomial decay, and the seed's max-norm.

* ``clip_value``: ``SGD`` + ``clip_grad_value_`` (identical to ``tf.clip_by_value``).
* ``global_norm``: ``SGD`` + the TF coefficient ``c * min(1/norm, 1/c)`` written out on
  top of ``get_total_norm``: ``clip_grad_norm_`` divides by ``norm + 1e-6``
  (:data:`CLIP_GRAD_NORM_EPS`), a relative difference of ~1e-6/norm (3e-7 here), far
  above the float64 threshold (``torch_impl/mistakes/mlp.py`` uses the built-in, to show it).
* ``max_norm``: ``SGD(momentum=0.9)`` (``buf = mu*buf + g``, ``p -= lr*buf``: TF1's
  ``MomentumOptimizer`` exactly; torch's first-step ``buf = g`` equals TF's
  ``0.9*0 + g``) with ``LambdaLR`` computing TF's ``polynomial_decay`` (``PolynomialLR``
  decays to 0, not to an end rate), stepped after ``optimizer.step()``. The max-norm is
  written out: ``clip_by_norm(kernel, r, axes=1)`` on a TF kernel ``[in, out]`` is the norm
  over the *output* units of each input row; on the torch weight ``[out, in]`` that is
  each column, ``torch.renorm(W, 2, dim=1, maxnorm=r)`` (``dim`` is the kept dimension).
  ``renorm`` scales by ``r / (norm + 1e-7)`` (:data:`RENORM_EPS`): 1e-7 relative in
  float64, so the faithful port computes ``W * r / max(norm, r)`` itself
  (``torch_impl/mistakes/mlp.py`` uses the built-in, to show it, and the wrong dimension,
  ``dim=0``: each output unit, Keras ``MaxNorm``'s axis).

:data:`ALTERNATIVES` ``resume``: after ``resume_at`` steps (default half the run) the port saves model,
optimizer and scheduler ``state_dict`` with ``torch.save``, throws itself away, and a
fresh port restored from the file runs the rest (:func:`save` / :func:`restore`).
"""

from __future__ import annotations

import os

from parity.portkit.layout import dense_from_torch, dense_to_torch
from parity.portkit.resume import ResumedPort
from parity.portkit.transforms import polynomial_decay
from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_numpy_as, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "save", "restore", "MLP", "MlpPort", "ALTERNATIVES",
           "RENORM_EPS", "CLIP_GRAD_NORM_EPS"]

LAYERS = ("hidden1", "hidden2", "output")
#: torch.renorm's epsilon (``maxnorm / (norm + 1e-7)``), absent from ``tf.clip_by_norm``.
RENORM_EPS = 1e-7
#: clip_grad_norm_'s epsilon (``max_norm / (total_norm + 1e-6)``), absent from TF.
CLIP_GRAD_NORM_EPS = 1e-6


def MLP(widths=(784, 300, 100, 10)):
    """Return the seed's MLP as an ``nn.Module`` with ``hidden1``, ``hidden2``, ``output``."""
    t = torch()

    class _MLP(t.nn.Module):
        def __init__(self):
            super().__init__()
            for name, i, o in zip(LAYERS, widths[:-1], widths[1:]):
                setattr(self, name, t.nn.Linear(i, o))

        def forward(self, x):
            h1 = t.relu(self.hidden1(x))
            h2 = t.relu(self.hidden2(h1))
            return h1, h2, self.output(h2)

    return _MLP()


class MlpPort:
    def __init__(self, case, dtype):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        o = case.option
        self.procedure = o("procedure", "clip_value")
        if self.procedure not in ("clip_value", "global_norm", "max_norm"):
            raise ValueError(f"unknown procedure {self.procedure!r}")
        self.model = MLP().to(dtype=torch_dtype(dtype), device=device())
        self.lr0 = o("lr", 0.01)
        if self.procedure == "max_norm":
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr0, momentum=o("momentum", 0.9))
            decay = dict(decay_steps=o("decay_steps"), end=o("end_lr", 0.001), power=o("power", 1.0))
            # LambdaLR multiplies the base lr by the factor: lr0 * (decayed / lr0) is the
            # decayed rate to within one rounding (<= 1 ulp, measured in the tests).
            self.sched = t.optim.lr_scheduler.LambdaLR(
                self.opt, lambda step: polynomial_decay(self.lr0, step, **decay) / self.lr0
            )
        else:
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr0)
            self.sched = None

    def _named(self):
        for layer in LAYERS:
            mod = getattr(self.model, layer)
            yield f"{layer}/kernel", mod.weight, True
            yield f"{layer}/bias", mod.bias, False

    @staticmethod
    def _out(x, is_weight):
        return to_numpy_as(x, dense_from_torch) if is_weight else to_numpy(x)

    def parameters(self):
        return {n: self._out(p, w) for n, p, w in self._named()}

    def load(self, params):
        with self.t.no_grad():
            for n, p, w in self._named():
                p.copy_(to_tensor(dense_to_torch(params[n]) if w else params[n], self.dtype))

    def settings(self):
        return {"procedure": self.procedure, "lr": self.lr0, "momentum": self.opt.defaults.get("momentum", 0.0),
                "dampening": self.opt.defaults.get("dampening", 0.0), "scheduler": type(self.sched).__name__}

    def _max_norm(self, weight, radius, tf_axes):
        """Return ``tf.clip_by_norm(kernel, radius, axes=tf_axes)`` of the torch weight, no epsilon.

        TF reduces axis ``tf_axes`` of the ``[in, out]`` kernel: dim ``1 - tf_axes`` of ``[out, in]``.
        """
        norm = weight.pow(2).sum(dim=1 - tf_axes, keepdim=True).sqrt()
        return weight * radius / norm.clamp_min(radius)

    def _clip_by_global_norm(self, params, clip):
        """Scale the gradients as ``tf.clip_by_global_norm``: ``c * min(1/norm, 1/c)``, no epsilon; return the norm."""
        t = self.t
        norm = t.nn.utils.get_total_norm([p.grad for p in params])
        scale = clip * t.minimum(1.0 / norm, t.ones_like(norm) / clip)
        with t.no_grad():
            for p in params:
                p.grad.mul_(scale)
        return norm

    def step(self, batch):
        t, o = self.t, self.case.option
        x = to_tensor(batch["X"], self.dtype)
        y = to_tensor(batch["y"], self.dtype)
        h1, h2, logits = self.model(x)
        # Probability targets: -sum(y * log_softmax) averaged over the batch, as
        # tf.losses.softmax_cross_entropy on one-hot labels.
        loss = t.nn.functional.cross_entropy(logits, y)
        self.opt.zero_grad()
        loss.backward()
        out = {
            "forward": {"hidden1": to_numpy(h1), "hidden2": to_numpy(h2), "logits": to_numpy(logits)},
            "loss": {"loss": to_numpy(loss)},
            "gradients": {n: self._out(p.grad, w) for n, p, w in self._named()},
        }
        params = list(self.model.parameters())
        if self.procedure == "clip_value":
            t.nn.utils.clip_grad_value_(params, o("clip_value", 1.0))
            out["processed_gradients"] = {n: self._out(p.grad, w) for n, p, w in self._named()}
        elif self.procedure == "global_norm":
            norm = self._clip_by_global_norm(params, o("clip_norm"))
            out["processed_gradients"] = {n: self._out(p.grad, w) for n, p, w in self._named()}
            out["processed_gradients"]["global_norm"] = to_numpy(norm)
        # The lr this update uses (the scheduler moves it after the step).
        out["learning_rate"] = {"lr": to_numpy(t.tensor(self.opt.param_groups[0]["lr"], dtype=torch_dtype(self.dtype)))}
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        out["parameters"] = self.parameters()
        if self.procedure == "max_norm":
            out["slots"] = {f"{n}/momentum": self._out(self.opt.state[p]["momentum_buffer"], w)
                            for n, p, w in self._named()}
            out["state"] = {"global_step": t.tensor(self.sched.last_epoch, dtype=t.int64).numpy()}
            radius, axes = o("max_norm", 1.0), o("max_norm_axes", 1)
            layers = o("max_norm_layers", ("hidden1", "hidden2"))
            with t.no_grad():
                for layer in layers:
                    weight = getattr(self.model, layer).weight
                    weight.copy_(self._max_norm(weight, radius, axes))
            out["constrained"] = {f"{layer}/kernel": self._out(getattr(self.model, layer).weight, True)
                                  for layer in layers}
        return out

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        if self.sched is not None:
            state["scheduler"] = self.sched.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(state["scheduler"])

    def close(self) -> None:
        pass


def save(port: MlpPort, directory: str) -> str:
    """Save the port's model, optimizer and scheduler ``state_dict`` under ``directory``; return the file."""
    path = os.path.join(directory, "mlp.pt")
    torch().save(port.state_dict(), path)
    return path


def restore(case, dtype, path: str) -> MlpPort:
    """Return a fresh port of ``case`` restored from a file written by :func:`save`."""
    port = MlpPort(case, dtype)
    port.load_state_dict(torch().load(path, map_location=device(), weights_only=True))
    return port


def resumed(case, dtype) -> ResumedPort:
    """The port, saved after ``resume_at`` steps and restored into a fresh one that runs the rest."""
    at = int(case.option("resume_at", case.steps // 2))
    return ResumedPort(case, dtype, lambda: MlpPort(case, dtype), save, restore, at)


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"resume": resumed}


def build(case, dtype, variant=None):
    """Build the torch MLP port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MlpPort(case, dtype)
