"""The dense module in PyTorch: nn.Linear stack, torch.optim, LambdaLR; TF1's formulas where torch differs.

The right port matches TF1 to float64 rounding for every config, which takes three
deliberate choices (each is a PITFALLS entry, each has a wrong variant below):

* Adam: torch adds ``eps`` to the *bias-corrected* ``sqrt(v)``; TF1 adds its epsilon-hat to
  the uncorrected one. ``eps_t = eps / sqrt(1 - beta2**t)``, set on the param group every
  step, makes ``torch.optim.Adam`` compute TF1's update exactly (P09).
* RMSprop: TF1 starts ``ms`` at 1 and puts epsilon inside the sqrt; ``torch.optim.RMSprop``
  starts at 0 with eps outside, and no setting maps one onto the other, so the port uses a
  20-line :class:`TF1RMSprop` optimizer (P11).
* Norm clipping and max-norm: ``clip_grad_norm_`` divides by ``norm + 1e-6`` and
  ``torch.renorm`` by ``norm + 1e-7`` (below float32 noise, above the float64 bound), so
  the port writes TF's ``t * c / max(||t||, c)`` with torch ops (P18, P20).

Variants (deliberately wrong ports, each the bug a pitfall describes):
``wrong_momentum`` (Keras velocity form, P07), ``nesterov_toggled`` (P08),
``adam_epsilon`` (stock eps, P09), ``rmsprop_stock`` (torch.optim.RMSprop, P11),
``adagrad_accumulator`` (torch's default initial accumulator 0, P12),
``schedule_off_by_one`` (scheduler stepped before the optimizer, P15),
``global_clip`` (global-norm clipping for per-tensor and back, P19),
``maxnorm_axis`` (the kernel axis used unmapped on the [out, in] weight, P20),
``no_transpose`` (kernel reshaped instead of transposed, P21),
``wrong_reduction`` (sum for mean and back, P27), ``no_zero_grad`` (P36), and
``clip_grad_norm`` (torch's own clip_grad_norm_, +1e-6: a convention, not a bug).
"""

from __future__ import annotations

import functools

from parity.strategies import learning_rate, normalize_config

from ._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "DensePort", "VARIANTS", "PITFALL_VARIANTS", "TF1RMSprop", "clip_gradients", "CLIP_NORM_EPS"]

#: wrong variant -> the PITFALLS id it reproduces
PITFALL_VARIANTS = {
    "wrong_momentum": "P07",
    "nesterov_toggled": "P08",
    "adam_epsilon": "P09",
    "rmsprop_stock": "P11",
    "adagrad_accumulator": "P12",
    "schedule_off_by_one": "P15",
    "global_clip": "P19",
    "maxnorm_axis": "P20",
    "no_transpose": "P21",
    "wrong_reduction": "P27",
    "no_zero_grad": "P36",
}
VARIANTS = (None, "clip_grad_norm") + tuple(PITFALL_VARIANTS)

#: ``clip_grad_norm_``'s coefficient is ``max_norm / (total_norm + CLIP_NORM_EPS)``, clamped
#: to 1 (torch/nn/utils/clip_grad.py); TF's clip_by_norm / clip_by_global_norm have none (P18).
CLIP_NORM_EPS = 1e-6

_TORCH_SLOTS = {
    "momentum": {"momentum": "momentum_buffer"},
    "adam": {"m": "exp_avg", "v": "exp_avg_sq"},
    "rmsprop": {"rms": "square_avg"},
    "adagrad": {"accumulator": "sum"},
    "sgd": {},
}


@functools.lru_cache(maxsize=None)
def _tf1_rmsprop_class():
    t = torch()

    class TF1RMSprop(t.optim.Optimizer):
        """TF1 ``RMSPropOptimizer`` (momentum 0): ``ms`` starts at 1, epsilon inside the sqrt."""

        def __init__(self, params, lr, decay=0.9, eps=1e-10):
            super().__init__(params, {"lr": lr, "decay": decay, "eps": eps})

        @t.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if not state:
                        state["square_avg"] = t.ones_like(p)
                    ms = state["square_avg"]
                    # the kernel's form, ms += (g^2 - ms)(1 - decay): from ms = 1 it rounds
                    # differently from decay*ms + (1-decay)*g^2 (17% in float32 at |g| ~ 2e-4)
                    ms.add_((p.grad * p.grad - ms) * (1 - group["decay"]))
                    p.addcdiv_(p.grad, (ms + group["eps"]).sqrt(), value=-group["lr"])

    return TF1RMSprop


def TF1RMSprop(*args, **kwargs):
    """Build the TF1-faithful RMSprop optimizer (a ``torch.optim.Optimizer``)."""
    return _tf1_rmsprop_class()(*args, **kwargs)


class DensePort:
    """A stack of ``nn.Linear`` trained by ``torch.optim`` under TF1's conventions."""

    def __init__(self, case, dtype, variant=None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r} of the torch dense port; expected one of {VARIANTS[1:]}")
        t = torch()
        self.t, self.dtype, self.variant = t, dtype, variant
        self.cfg = cfg = normalize_config(case.options)
        widths = cfg["widths"]
        self.depth = len(widths) - 1
        act = {"linear": t.nn.Identity, "relu": t.nn.ReLU, "tanh": t.nn.Tanh, "sigmoid": t.nn.Sigmoid}[cfg["activation"]]
        layers = []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(t.nn.Linear(n_in, n_out))
            if i < self.depth - 1:
                layers.append(act())
        self.model = t.nn.Sequential(*layers).to(dtype=torch_dtype(dtype), device=device())
        self.linears = [m for m in self.model if isinstance(m, t.nn.Linear)]
        self.reduction = cfg["reduction"]
        if variant == "wrong_reduction":
            self.reduction = "sum" if self.reduction == "mean" else "mean"
        self._make_optimizer()

    # -- construction ---------------------------------------------------------------
    def _make_optimizer(self) -> None:
        t, cfg, variant = self.t, self.cfg, self.variant
        opt = cfg["optimizer"]
        params = list(self.model.parameters())
        lr0 = opt["lr"]
        name = opt["name"]
        self.manual_momentum = name == "momentum" and variant == "wrong_momentum"
        if name == "sgd" or self.manual_momentum:
            self.opt = t.optim.SGD(params, lr=lr0)
        elif name == "momentum":
            nesterov = opt["nesterov"] != (variant == "nesterov_toggled")
            # with momentum 0 Nesterov is plain SGD (and torch refuses the combination)
            nesterov = nesterov and opt["momentum"] > 0
            self.opt = t.optim.SGD(params, lr=lr0, momentum=opt["momentum"], nesterov=nesterov)
        elif name == "adam":
            self.opt = t.optim.Adam(params, lr=lr0, betas=(opt["beta1"], opt["beta2"]), eps=opt["epsilon"])
        elif name == "rmsprop":
            if variant == "rmsprop_stock":
                self.opt = t.optim.RMSprop(params, lr=lr0, alpha=opt["decay"], eps=opt["epsilon"])
            else:
                self.opt = TF1RMSprop(params, lr=lr0, decay=opt["decay"], eps=opt["epsilon"])
        else:
            if variant == "adagrad_accumulator":
                self.opt = t.optim.Adagrad(params, lr=lr0)  # torch defaults: accumulator 0, eps 1e-10
            else:
                self.opt = t.optim.Adagrad(params, lr=lr0, initial_accumulator_value=opt["initial_accumulator"], eps=0.0)
        self.sched = t.optim.lr_scheduler.LambdaLR(self.opt, lambda k: learning_rate(cfg, k) / lr0)
        self.velocity = {}
        self.steps_done = 0

    # -- layout at the boundary -----------------------------------------------------
    def _to_canonical(self, w):
        # nn.Linear weight is [out, in]; the canonical kernel is [in, out] (P21)
        if self.variant == "no_transpose":
            return w.reshape(w.shape[1], w.shape[0])
        return w.T

    def _named(self):
        for i, lin in enumerate(self.linears):
            yield f"dense{i}/kernel", lin.weight, True
            yield f"dense{i}/bias", lin.bias, False

    def _export(self, tensors) -> dict:
        return {n: to_numpy(self._to_canonical(x) if is_w else x) for (n, _, is_w), x in zip(self._named(), tensors)}

    def parameters(self):
        return self._export([p for _, p, _ in self._named()])

    def load(self, params):
        with self.t.no_grad():
            for n, p, is_w in self._named():
                value = to_tensor(params[n], self.dtype)
                if is_w:
                    value = value.reshape(p.shape) if self.variant == "no_transpose" else value.T
                p.copy_(value)
        self._make_optimizer()  # fresh slots and schedule for a fresh run

    # -- one training step ------------------------------------------------------------
    def _loss(self, out, y):
        F = self.t.nn.functional
        if self.cfg["loss"] == "mse":
            return F.mse_loss(out, y, reduction=self.reduction)
        return F.cross_entropy(out, y, reduction=self.reduction)

    def _clip(self) -> None:
        clip, t = self.cfg["clip"], self.t
        if clip is None:
            return
        grads = [p.grad for p in self.model.parameters()]
        kind, limit = clip["kind"], clip["limit"]
        if self.variant == "global_clip" and kind != "value":
            kind = "norm" if kind == "global_norm" else "global_norm"
        with t.no_grad():
            if kind == "value":
                t.nn.utils.clip_grad_value_(self.model.parameters(), limit)
            elif self.variant == "clip_grad_norm":
                if kind == "global_norm":
                    t.nn.utils.clip_grad_norm_(self.model.parameters(), limit)
                else:
                    for p in self.model.parameters():
                        t.nn.utils.clip_grad_norm_([p], limit)
            elif kind == "global_norm":
                # tf.clip_by_global_norm: t * c / max(global_norm, c), no epsilon (P18)
                norm = t.linalg.vector_norm(t.stack([t.linalg.vector_norm(g) for g in grads]))
                coef = limit / t.clamp(norm, min=limit)
                for g in grads:
                    g.mul_(coef)
            else:
                for g in grads:  # tf.clip_by_norm, one tensor at a time (P19)
                    g.mul_(limit / t.clamp(t.linalg.vector_norm(g), min=limit))

    def _max_norm(self) -> None:
        mn, t = self.cfg["max_norm"], self.t
        # tf.clip_by_norm(kernel, r, axes=[a]) on [in, out] reduces axis a; on the
        # [out, in] weight that is dim 1 - a (P20)
        dim = mn["axis"] if self.variant == "maxnorm_axis" else 1 - mn["axis"]
        with t.no_grad():
            for lin in self.linears:
                norm = t.linalg.vector_norm(lin.weight, dim=dim, keepdim=True)
                lin.weight.mul_(mn["radius"] / t.clamp(norm, min=mn["radius"]))

    def _slots(self) -> dict:
        out = {}
        mapping = _TORCH_SLOTS[self.cfg["optimizer"]["name"]]
        if self.manual_momentum:
            mapping = {}
            for n, p, is_w in self._named():
                out[f"{n}/momentum"] = to_numpy(self._to_canonical(self.velocity[p]) if is_w else self.velocity[p])
        for n, p, is_w in self._named():
            for slot, key in mapping.items():
                # torch keeps no buffer when momentum is 0; TF1's accumulator is then g
                value = self.opt.state[p][key] if key in self.opt.state[p] else p.grad
                out[f"{n}/{slot}"] = to_numpy(self._to_canonical(value) if is_w else value)
        return out

    def _momentum_keras_form(self, lr) -> None:
        # Keras' velocity folds the lr in: v = mu v - lr g; p += v (or mu v - lr g, Nesterov).
        # Equal to TF1/torch under a constant lr only (P07). The slot reported is -v/lr,
        # TF1's accumulator under a constant lr.
        opt, t = self.cfg["optimizer"], self.t
        mu = opt["momentum"]
        with t.no_grad():
            for p in self.model.parameters():
                v = self.velocity.get(p)
                v = -lr * p.grad if v is None else mu * v - lr * p.grad
                self.velocity[p] = v
                p.add_(mu * v - lr * p.grad if opt["nesterov"] else v)
        self.velocity_slot = {p: -v / lr for p, v in self.velocity.items()}

    def step(self, batch):
        t, cfg = self.t, self.cfg
        x = to_tensor(batch["x"], self.dtype)
        y = to_tensor(batch["y"], self.dtype)
        if self.variant != "no_zero_grad":
            self.opt.zero_grad()
        forward, h = {}, x
        for i, lin in enumerate(self.linears):
            h = lin(h)
            if i < self.depth - 1:
                h = self.model[2 * i + 1](h)
            forward[f"dense{i}"] = to_numpy(h)
        loss = self._loss(h, y)
        loss.backward()
        params = list(self.model.parameters())
        out = {"forward": forward, "loss": {"loss": to_numpy(loss)}, "gradients": self._export([p.grad for p in params])}
        if cfg["clip"] is not None:
            self._clip()
            out["processed_gradients"] = self._export([p.grad for p in params])
        if self.variant == "schedule_off_by_one":
            self.sched.step()  # the bug: the scheduler runs before the optimizer (P15)
        group = self.opt.param_groups[0]
        lr = group["lr"]
        out["learning_rate"] = {"lr": to_numpy(t.tensor(lr, dtype=torch_dtype(self.dtype)))}
        opt = cfg["optimizer"]
        if opt["name"] == "adam" and self.variant != "adam_epsilon":
            # TF1's epsilon-hat on the uncorrected sqrt(v) (P09)
            group["eps"] = opt["epsilon"] / (1.0 - opt["beta2"] ** (self.steps_done + 1)) ** 0.5
        if self.manual_momentum:
            self._momentum_keras_form(lr)
        else:
            self.opt.step()
        if self.variant != "schedule_off_by_one":
            self.sched.step()
        self.steps_done += 1
        out["parameters"] = self.parameters()
        if self.manual_momentum:
            self.velocity, keras_v = self.velocity_slot, self.velocity
            slots = self._slots()
            self.velocity = keras_v
        else:
            slots = self._slots()
        if slots:
            out["slots"] = slots
        if cfg["max_norm"] is not None:
            self._max_norm()
            out["constrained"] = {k: v for k, v in self.parameters().items() if k.endswith("/kernel")}
        return out


def clip_gradients(arrays, kind: str, limit: float) -> list:
    """Clip ``arrays`` as gradients, with torch's own functions and conventions.

    ``value``: ``clip_grad_value_``; ``global_norm``: ``clip_grad_norm_`` over all;
    ``norm``: ``clip_grad_norm_`` on each tensor alone (torch has no per-tensor built-in,
    P19). Mirrors ``tf_impl.v2.dense.clip_gradients``.
    """
    import numpy as np  # noqa: PLC0415

    t = torch()
    params = []
    for a in arrays:
        a = np.asarray(a)
        p = t.zeros(a.shape, dtype=torch_dtype(str(a.dtype)), requires_grad=True)
        p.grad = t.from_numpy(a.copy())
        params.append(p)
    if kind == "value":
        t.nn.utils.clip_grad_value_(params, limit)
    elif kind == "global_norm":
        t.nn.utils.clip_grad_norm_(params, limit)
    elif kind == "norm":
        for p in params:
            t.nn.utils.clip_grad_norm_([p], limit)
    else:
        raise ValueError(f"unknown clip kind {kind!r}; expected value, norm or global_norm")
    return [p.grad.numpy() for p in params]


def build(case, dtype, variant=None):
    """Build the torch dense port of ``case`` in ``dtype`` (``variant``: a deliberately wrong port)."""
    return DensePort(case, dtype, variant)
