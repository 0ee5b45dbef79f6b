"""The dense module in PyTorch: nn.Linear stack, torch.optim, LambdaLR; TF1's formulas where torch differs.

The port matches TF1 to float64 rounding for every config, which takes three deliberate
choices (each is a PITFALLS entry):

* Adam: torch adds ``eps`` to the *bias-corrected* ``sqrt(v)``; TF1 adds its epsilon-hat to
  the uncorrected one. ``eps_t = eps / sqrt(1 - beta2**t)``, set on the param group every
  step, makes ``torch.optim.Adam`` compute TF1's update exactly (P09).
* RMSprop: TF1 starts ``ms`` at 1 and puts epsilon inside the sqrt; ``torch.optim.RMSprop``
  starts at 0 with eps outside, and no setting maps one onto the other, so the port uses a
  20-line :class:`TF1RMSprop` optimizer (P11).
* Norm clipping and max-norm: ``clip_grad_norm_`` divides by ``norm + 1e-6`` and
  ``torch.renorm`` by ``norm + 1e-7`` (below float32 noise, above the float64 bound), so
  the port writes TF's ``t * c / max(||t||, c)`` with torch ops (P18, P20).

The bugs each pitfall describes, written as wrong ports the properties must falsify,
live in ``torch_impl/mistakes/dense.py``.
"""

from __future__ import annotations

import functools

from parity.strategies import learning_rate, normalize_config
from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "DensePort", "TF1RMSprop", "clip_gradients", "CLIP_NORM_EPS"]

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

    def __init__(self, case, dtype):
        t = torch()
        self.t, self.dtype = t, dtype
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
        self._make_optimizer()

    # -- construction ---------------------------------------------------------------
    def _make_optimizer(self) -> None:
        cfg = self.cfg
        lr0 = cfg["optimizer"]["lr"]
        self.opt = self._optimizer(list(self.model.parameters()), cfg["optimizer"])
        self.sched = self.t.optim.lr_scheduler.LambdaLR(self.opt, lambda k: learning_rate(cfg, k) / lr0)
        self.steps_done = 0

    def _optimizer(self, params, opt):
        """Return the torch optimizer that computes TF1's update for ``opt`` (a normalized optimizer config)."""
        t, name, lr0 = self.t, opt["name"], opt["lr"]
        if name == "sgd":
            return t.optim.SGD(params, lr=lr0)
        if name == "momentum":
            # torch's buf = mu*buf + g; p -= lr*buf is TF1's accumulator form (P07); with
            # momentum 0 Nesterov is plain SGD (and torch refuses the combination)
            nesterov = opt["nesterov"] and opt["momentum"] > 0
            return t.optim.SGD(params, lr=lr0, momentum=opt["momentum"], nesterov=nesterov)
        if name == "adam":
            return t.optim.Adam(params, lr=lr0, betas=(opt["beta1"], opt["beta2"]), eps=opt["epsilon"])
        if name == "rmsprop":
            return TF1RMSprop(params, lr=lr0, decay=opt["decay"], eps=opt["epsilon"])
        # TF1's Adagrad: the accumulator starts at initial_accumulator, no epsilon (P12)
        return t.optim.Adagrad(params, lr=lr0, initial_accumulator_value=opt["initial_accumulator"], eps=0.0)

    # -- layout at the boundary -----------------------------------------------------
    def _to_canonical(self, w):
        # nn.Linear weight is [out, in]; the canonical kernel is [in, out] (P21)
        return w.T

    def _to_torch(self, kernel, weight):
        return kernel.T

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
                p.copy_(self._to_torch(value, p) if is_w else value)
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
        with t.no_grad():
            if kind == "value":
                t.nn.utils.clip_grad_value_(self.model.parameters(), limit)
            elif kind == "global_norm":
                self._clip_by_global_norm(grads, limit)
            else:
                self._clip_by_norm(grads, limit)

    def _clip_by_global_norm(self, grads, limit) -> None:
        # tf.clip_by_global_norm: t * c / max(global_norm, c), no epsilon (P18)
        t = self.t
        norm = t.linalg.vector_norm(t.stack([t.linalg.vector_norm(g) for g in grads]))
        coef = limit / t.clamp(norm, min=limit)
        for g in grads:
            g.mul_(coef)

    def _clip_by_norm(self, grads, limit) -> None:
        # tf.clip_by_norm, one tensor at a time (P19)
        t = self.t
        for g in grads:
            g.mul_(limit / t.clamp(t.linalg.vector_norm(g), min=limit))

    def _max_norm_dim(self, axis: int) -> int:
        # tf.clip_by_norm(kernel, r, axes=[a]) on [in, out] reduces axis a; on the
        # [out, in] weight that is dim 1 - a (P20)
        return 1 - axis

    def _max_norm(self) -> None:
        mn, t = self.cfg["max_norm"], self.t
        dim = self._max_norm_dim(mn["axis"])
        with t.no_grad():
            for lin in self.linears:
                norm = t.linalg.vector_norm(lin.weight, dim=dim, keepdim=True)
                lin.weight.mul_(mn["radius"] / t.clamp(norm, min=mn["radius"]))

    def _slots(self) -> dict:
        out = {}
        mapping = _TORCH_SLOTS[self.cfg["optimizer"]["name"]]
        for n, p, is_w in self._named():
            for slot, key in mapping.items():
                # torch keeps no buffer when momentum is 0; TF1's accumulator is then g
                value = self.opt.state[p][key] if key in self.opt.state[p] else p.grad
                out[f"{n}/{slot}"] = to_numpy(self._to_canonical(value) if is_w else value)
        return out

    def _zero_grad(self) -> None:
        self.opt.zero_grad()

    def _learning_rate(self) -> float:
        """Return the rate this step's update uses (the scheduler moves it after the update)."""
        return self.opt.param_groups[0]["lr"]

    def _epsilon_hat(self, group) -> None:
        # TF1's epsilon-hat on the uncorrected sqrt(v) (P09)
        opt = self.cfg["optimizer"]
        group["eps"] = opt["epsilon"] / (1.0 - opt["beta2"] ** (self.steps_done + 1)) ** 0.5

    def _update(self, lr) -> None:
        self.opt.step()

    def _schedule(self) -> None:
        self.sched.step()  # after optimizer.step(): the next update's rate (P15)

    def step(self, batch):
        t, cfg = self.t, self.cfg
        x = to_tensor(batch["x"], self.dtype)
        y = to_tensor(batch["y"], self.dtype)
        self._zero_grad()
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
        lr = self._learning_rate()
        out["learning_rate"] = {"lr": to_numpy(t.tensor(lr, dtype=torch_dtype(self.dtype)))}
        if cfg["optimizer"]["name"] == "adam":
            self._epsilon_hat(self.opt.param_groups[0])
        self._update(lr)
        self._schedule()
        self.steps_done += 1
        out["parameters"] = self.parameters()
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
    """Build the torch dense port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return DensePort(case, dtype)
