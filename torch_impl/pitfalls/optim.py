"""Optimizer and training-loop pitfalls in PyTorch: the right port, and the ``wrong`` variant.

Mirrors ``tf_impl/v1/pitfalls/optim.py`` (and ``tf_impl/v2/pitfalls/optim.py`` for the Keras
SGD momentum case). The right port maps every TF1 convention:

* ``MomentumOptimizer`` -> ``SGD(momentum, dampening=0, nesterov)``; Keras SGD under a
  learning-rate change -> rescale ``momentum_buffer`` by ``lr_old / lr_new`` (Keras keeps
  ``lr`` inside the velocity);
* ``AdamOptimizer(epsilon=e)`` -> ``Adam(eps=e / sqrt(1 - beta2**t))``, set each step (TF adds
  epsilon-hat to the uncorrected ``sqrt(v)``);
* ``RMSPropOptimizer`` -> ``RMSprop(alpha=decay, eps=0)`` with ``square_avg`` started at ones;
* ``AdagradOptimizer`` -> ``Adagrad(initial_accumulator_value=0.1, eps=0)``;
* ``AdadeltaOptimizer(lr, rho, epsilon)`` -> ``Adadelta(lr, rho, eps)`` with every value mapped (torch's
  defaults rho 0.9, eps 1e-6 are not TF1's 0.95, 1e-8; tf_keras' lr 0.001 is not Keras 2.3's 1.0);
* ``RMSPropOptimizer(centered=True)`` -> ``RMSprop(centered=True)``, ``grad_avg`` started at zeros;
* no weight decay in the reference -> ``weight_decay=0`` (the wrong port couples one);
* ``polynomial_decay(end_learning_rate)`` -> ``LambdaLR`` with TF's formula, stepped after
  ``optimizer.step()``;
* ``clip_by_global_norm`` -> the global norm and ``c / max(norm, c)``, computed exactly;
* ``clip_by_norm(w, r, axes=[0])`` on a Dense kernel -> each row of ``Linear.weight``
  (``[out, in]``) rescaled, after ``optimizer.step()``;
* ``var_list`` -> ``requires_grad_(False)`` for the rest (the wrong ``max-norm-missing`` applies no constraint).
"""

from __future__ import annotations

import math
import warnings

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "OptimPort", "max_norm_"]

_SLOT_STATE = {"momentum": "momentum_buffer", "m": "exp_avg", "v": "exp_avg_sq", "rms": "square_avg", "accumulator": "sum",
               "accum": "square_avg", "accum_update": "acc_delta"}
_SLOTS = {"sgd": (), "momentum": ("momentum",), "adam": ("m", "v"), "rmsprop": ("rms",), "adagrad": ("accumulator",),
          "adadelta": ("accum", "accum_update")}
#: the torch defaults a port that does not map the TF value falls back to (the wrong ports' mistakes)
_TORCH_ADADELTA = {"rho": 0.9, "eps": 1e-6}
_KERAS_ADADELTA_LR = 0.001  # tf_keras 2.x Adadelta() default (Keras 2.3: 1.0)


def polynomial_lr(lr: float, step: int, decay_steps: int, end: float, power: float = 1.0) -> float:
    """Return ``tf.compat.v1.train.polynomial_decay`` at ``step`` (0-based, cycle=False)."""
    frac = 1.0 - min(step, decay_steps) / decay_steps
    return (lr - end) * frac**power + end


def max_norm_(weight, radius: float, dim: int) -> None:
    """Rescale, in place, each slice along ``dim`` whose 2-norm exceeds ``radius`` (exact, no epsilon).

    ``dim`` is the kept dimension, as in ``torch.renorm``; ``torch.renorm`` itself divides by
    ``norm + 1e-7``, a 1e-7 relative difference from ``tf.clip_by_norm`` that float64 sees.
    """
    t = torch()
    other = 1 - dim
    norms = weight.norm(dim=other, keepdim=True)
    weight.mul_(radius / t.clamp(norms, min=radius))


class OptimPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        o = self.o = dict(case.options)
        shapes = {n: case.params[n].shape for n in ("W1", "W2")}
        dt = torch_dtype(dtype)
        # torch's default init drawn from the case's seed (as a script that calls torch.manual_seed first): the
        # wrong init-defaults port keeps it, and its figures are the same run to run (torch seeds its own generator
        # at random per process); fork_rng leaves the process's generator as it was
        with t.random.fork_rng(devices=[]):
            t.manual_seed(case.seed)
            self.layers = {n: t.nn.Linear(s[0], s[1], bias=False).to(dtype=dt, device=device()) for n, s in shapes.items()}
        self.names = list(o.get("var_list", ("W1", "W2")))
        if self.mistake != "trainable-var-list":
            for n, layer in self.layers.items():
                layer.weight.requires_grad_(n in self.names)
        trained = [self.layers[n].weight for n in self.names]
        if self.mistake == "trainable-var-list":
            trained = [layer.weight for layer in self.layers.values()]
        self.opt = self._optimizer(trained)
        self.sched = None
        sched = o.get("schedule")
        if sched and sched["kind"] == "polynomial":
            if self.mistake == "lr-schedule-end":
                self.sched = t.optim.lr_scheduler.PolynomialLR(self.opt, total_iters=sched["decay_steps"], power=sched.get("power", 1.0))
            else:
                lr0 = o["lr"]
                self.sched = t.optim.lr_scheduler.LambdaLR(
                    self.opt, lambda k: polynomial_lr(lr0, k, sched["decay_steps"], sched["end"], sched.get("power", 1.0)) / lr0
                )
        elif sched and sched["kind"] == "piecewise":
            bounds, values = list(sched["boundaries"]), list(sched["values"])
            self.sched = t.optim.lr_scheduler.LambdaLR(
                self.opt, lambda k: values[sum(k > b for b in bounds)] / values[0]
            )
        self.t_step = 0

    def _optimizer(self, params):
        t, o, m = self.t, self.o, self.mistake
        kind = o.get("optimizer", "sgd")
        lr = o["lr"] if not o.get("schedule") else o["schedule"].get("values", [o.get("lr")])[0]
        if m == "optimizer-class":
            return t.optim.SGD(params, lr=lr)  # the mistake: plain gradient descent for the reference's Adadelta
        if kind == "sgd":
            return t.optim.SGD(params, lr=lr, weight_decay=o.get("port_weight_decay", 0.0) if m == "weight-decay" else 0.0)
        if kind == "adadelta":
            rho = _TORCH_ADADELTA["rho"] if m == "optimizer-rho" else o.get("rho", 0.95)
            eps = _TORCH_ADADELTA["eps"] if m == "optimizer-epsilon" else o.get("epsilon", 1e-8)
            return t.optim.Adadelta(params, lr=_KERAS_ADADELTA_LR if m == "adadelta-lr-default" else lr, rho=rho, eps=eps)
        if kind == "momentum":
            nesterov = bool(o.get("nesterov", False)) and m != "nesterov"
            damp = o["momentum"] if m == "sgd-dampening" else 0.0
            return t.optim.SGD(params, lr=lr, momentum=o["momentum"], nesterov=nesterov, dampening=damp)
        if kind == "adam":
            betas = (0.9, 0.999) if m == "adam-betas" else (o.get("beta1", 0.9), o.get("beta2", 0.999))
            return t.optim.Adam(params, lr=lr, betas=betas, eps=o.get("epsilon", 1e-8))
        if kind == "rmsprop":
            centered = bool(o.get("centered", False)) and m != "rmsprop-centered"
            opt = t.optim.RMSprop(params, lr=lr, alpha=o.get("decay", 0.9), eps=0.0, centered=centered)
            if m != "rmsprop-init":
                for p in params:  # TF1 starts the mean square at ones, torch at zeros
                    opt.state[p] = {"step": t.tensor(0.0, dtype=torch_dtype("float32")), "square_avg": t.ones_like(p)}
                    if centered:
                        opt.state[p]["grad_avg"] = t.zeros_like(p)
            return opt
        if kind == "adagrad":
            if m == "adagrad-init":
                return t.optim.Adagrad(params, lr=lr)
            return t.optim.Adagrad(params, lr=lr, initial_accumulator_value=o.get("initial_accumulator", 0.1), eps=0.0)
        raise ValueError(f"unknown optimizer {kind!r}")

    def parameters(self):
        return {n: dense_from_torch(to_numpy(layer.weight)) for n, layer in self.layers.items()}

    def load(self, params):
        with self.t.no_grad():
            for n, layer in self.layers.items():
                if self.mistake == "init-defaults" and n == "W1":
                    continue  # the mistake: the kernel is not copied, torch's default init stays
                layer.weight.copy_(to_tensor(dense_to_torch(params[n]), self.dtype))

    def _grads(self):
        return {n: dense_from_torch(to_numpy(self.layers[n].weight.grad)) for n in self.names}

    def step(self, batch):
        t, o, m = self.t, self.o, self.mistake
        X, T = to_tensor(batch["X"], self.dtype), to_tensor(batch["T"], self.dtype)
        if m == "lr-off-by-one" and self.sched is not None:
            with warnings.catch_warnings():  # torch warns of this very order; the catalogue shows it as a finding
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                self.sched.step()  # the mistake: the schedule advanced before the update
        y = self.layers["W2"](self.layers["W1"](X))
        loss = o.get("loss_scale", 1.0) * ((y - T) ** 2).mean()
        if m != "zero-grad":
            self.opt.zero_grad()
        loss.backward()
        out = {"forward": {"y": to_numpy(y)}, "loss": {"loss": to_numpy(loss)}, "gradients": self._grads()}
        clip = o.get("clip")
        if clip:
            c = clip["norm"]
            grads = [self.layers[n].weight.grad for n in self.names]
            with t.no_grad():
                if m == "clip-per-tensor":
                    for g in grads:
                        g.mul_(c / max(float(g.norm()), c))
                else:
                    total = float(t.sqrt(sum((g * g).sum() for g in grads)))
                    for g in grads:
                        g.mul_(c / max(total, c))
            out["processed_gradients"] = self._grads()
        lr = self.opt.param_groups[0]["lr"]
        out["learning_rate"] = {"lr": lr}
        self.t_step += 1
        if o.get("optimizer") == "adam" and m != "adam-epsilon":
            # TF's epsilon-hat is added to sqrt(v) before the bias correction: the equivalent
            # torch eps changes with the step.
            self.opt.param_groups[0]["eps"] = o.get("epsilon", 1e-8) / math.sqrt(1.0 - o.get("beta2", 0.999) ** self.t_step)
        mn = o.get("max_norm")
        if mn and m == "max-norm-timing":
            with t.no_grad():
                max_norm_(self.layers[mn["param"]].weight, mn["radius"], 0)
        self.opt.step()
        if self.sched is not None:
            if m != "lr-off-by-one":
                self.sched.step()
            new_lr = self.opt.param_groups[0]["lr"]
            if o.get("keras_momentum") and m != "sgd-momentum-lr-change" and new_lr != lr:
                # Keras folds lr into its velocity (m = mu*m - lr*g): the torch buffer must
                # be rescaled when lr changes to keep the same velocity.
                for p in self.opt.param_groups[0]["params"]:
                    self.opt.state[p]["momentum_buffer"].mul_(lr / new_lr)
        out["parameters"] = self.parameters()
        slots = {}
        for s in _SLOTS[o.get("optimizer", "sgd")] if not o.get("keras_momentum") and m != "optimizer-class" else ():
            for n in self.names:
                slots[f"{s}/{n}"] = dense_from_torch(to_numpy(self.opt.state[self.layers[n].weight][_SLOT_STATE[s]]))
        if slots:
            out["slots"] = slots
        if mn:
            if m not in ("max-norm-timing", "max-norm-missing"):  # max-norm-missing: the mistake, no constraint at all
                with t.no_grad():
                    max_norm_(self.layers[mn["param"]].weight, mn["radius"], 1 if m == "max-norm-axis" else 0)
            out["constrained"] = {mn["param"]: dense_from_torch(to_numpy(self.layers[mn["param"]].weight))}
        return out

    def settings(self) -> dict:
        o, m = self.o, self.mistake
        kind = "sgd" if m == "optimizer-class" else o.get("optimizer", "sgd")
        out = {"framework_convention": "torch", "optimizer": kind}
        if kind == "adam":
            form = "corrected" if m == "adam-epsilon" else "hat"
            out.update(adam_epsilon=o.get("epsilon", 1e-8), adam_epsilon_form=form,
                       adam_betas=(0.9, 0.999) if m == "adam-betas" else (o.get("beta1", 0.9), o.get("beta2", 0.999)))
        if kind == "adadelta":
            out.update(adadelta_rho=_TORCH_ADADELTA["rho"] if m == "optimizer-rho" else o.get("rho", 0.95),
                       adadelta_epsilon=_TORCH_ADADELTA["eps"] if m == "optimizer-epsilon" else o.get("epsilon", 1e-8))
        if kind == "momentum":
            out.update(
                momentum=o["momentum"],
                nesterov=bool(o.get("nesterov", False)) and m != "nesterov",
                dampening=o["momentum"] if m == "sgd-dampening" else 0.0,
            )
        if kind == "rmsprop":
            out.update(rmsprop_decay=o.get("decay", 0.9), rmsprop_initial=0.0 if m == "rmsprop-init" else 1.0,
                       rmsprop_centered=bool(o.get("centered", False)) and m != "rmsprop-centered",
                       rmsprop_epsilon=0.0, rmsprop_epsilon_form="outside sqrt")
        if kind == "adagrad":
            out.update(initial_accumulator=0.0 if m == "adagrad-init" else o.get("initial_accumulator", 0.1))
        out["coupled_weight_decay"] = o.get("port_weight_decay", 0.0) if m == "weight-decay" else 0.0
        if o.get("clip"):
            out["clip"] = {"kind": "per-tensor" if m == "clip-per-tensor" else "global", "value": o["clip"]["norm"]}
        if o.get("max_norm") and m == "max-norm-missing":
            out["max_norm"] = None
        elif o.get("max_norm"):
            out["max_norm"] = {
                "api": "torch.renorm",
                "dim": 1 if m == "max-norm-axis" else 0,
                "radius": o["max_norm"]["radius"],
                "when": "before update" if m == "max-norm-timing" else "after update",
            }
        return out


def build(case, dtype, variant=None):
    """Build the torch optimizer-pitfall port of ``case`` (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch optimizer pitfall port")
    return OptimPort(case, dtype, variant)
