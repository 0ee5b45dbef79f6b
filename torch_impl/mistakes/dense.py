"""The dense port, wrong the ways the pitfalls describe: the properties must falsify each.

Each class is ``torch_impl/dense.py``'s :class:`DensePort` with one thing changed, named
after its pitfall (``parity explain NAME``; the PITFALLS id in brackets).
``tests/properties/test_teeth.py`` checks that hypothesis finds, and shrinks, a config
where each disagrees with the numpy oracle.
"""

from __future__ import annotations

from torch_impl._common import to_numpy
from torch_impl.dense import DensePort

__all__ = ["MISTAKES", "PITFALL_VARIANTS"]


class KerasMomentum(DensePort):
    """``sgd-momentum-lr-change`` (P07): Keras' velocity, which folds the lr in.

    ``v = mu v - lr g; p += v`` (or ``mu v - lr g``, Nesterov): equal to TF1/torch under a
    constant lr only. The slot reported is ``-v / lr``, TF1's accumulator under a constant lr.
    """

    def _optimizer(self, params, opt):
        if opt["name"] != "momentum":
            return super()._optimizer(params, opt)
        self.velocity = {}
        return self.t.optim.SGD(params, lr=opt["lr"])  # plain SGD: the momentum is done by hand

    def _update(self, lr) -> None:
        opt, t = self.cfg["optimizer"], self.t
        if opt["name"] != "momentum":
            return super()._update(lr)
        mu = opt["momentum"]
        with t.no_grad():
            for p in self.model.parameters():
                v = self.velocity.get(p)
                v = -lr * p.grad if v is None else mu * v - lr * p.grad  # the lr inside the velocity
                self.velocity[p] = v
                p.add_(mu * v - lr * p.grad if opt["nesterov"] else v)
        self.velocity_slot = {p: -v / lr for p, v in self.velocity.items()}

    def _slots(self) -> dict:
        if self.cfg["optimizer"]["name"] != "momentum":
            return super()._slots()
        return {f"{n}/momentum": to_numpy(self._to_canonical(self.velocity_slot[p]) if is_w else self.velocity_slot[p])
                for n, p, is_w in self._named()}


class NesterovToggled(DensePort):
    """``nesterov`` (P08): ``nesterov=`` flipped in the port."""

    def _optimizer(self, params, opt):
        if opt["name"] == "momentum":
            opt = {**opt, "nesterov": not opt["nesterov"]}  # the slip
        return super()._optimizer(params, opt)


class AdamEpsilon(DensePort):
    """``adam-epsilon`` (P09): torch's own eps, added to the bias-corrected ``sqrt(v)``."""

    def _epsilon_hat(self, group) -> None:
        pass  # the slip: TF1's epsilon passed as torch's eps, unscaled


class StockRMSprop(DensePort):
    """``rmsprop-init`` (P11): ``torch.optim.RMSprop``: ``ms`` starts at 0, eps outside the sqrt."""

    def _optimizer(self, params, opt):
        if opt["name"] != "rmsprop":
            return super()._optimizer(params, opt)
        return self.t.optim.RMSprop(params, lr=opt["lr"], alpha=opt["decay"], eps=opt["epsilon"])  # the slip


class AdagradDefaults(DensePort):
    """``adagrad-init`` (P12): torch's defaults, initial accumulator 0 and eps 1e-10."""

    def _optimizer(self, params, opt):
        if opt["name"] != "adagrad":
            return super()._optimizer(params, opt)
        return self.t.optim.Adagrad(params, lr=opt["lr"])  # the slip: TF1's initial_accumulator dropped


class SchedulerBeforeOptimizer(DensePort):
    """``lr-off-by-one`` (P15): the scheduler stepped before the optimizer."""

    def _learning_rate(self) -> float:
        self.sched.step()  # the bug: the scheduler runs before the optimizer
        return super()._learning_rate()

    def _schedule(self) -> None:
        pass


class ClipsSwapped(DensePort):
    """``clip-per-tensor`` (P19): per-tensor clipping written as global clipping, and back."""

    _clip_by_norm = DensePort._clip_by_global_norm  # the slip: one norm over all tensors
    _clip_by_global_norm = DensePort._clip_by_norm  # and each tensor on its own


class MaxNormAxis(DensePort):
    """``max-norm-axis`` (P20): TF's kernel axis used unmapped on the ``[out, in]`` weight."""

    def _max_norm_dim(self, axis: int) -> int:
        return axis  # the slip: axes=[a] of [in, out] is dim 1 - a of [out, in]


class NoTranspose(DensePort):
    """``dense-transpose`` (P21): the kernel reshaped instead of transposed."""

    def _to_canonical(self, w):
        return w.reshape(w.shape[1], w.shape[0])  # the slip

    def _to_torch(self, kernel, weight):
        return kernel.reshape(weight.shape)  # the slip


class WrongReduction(DensePort):
    """``loss-reduction`` (P27): sum for mean, and mean for sum."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.reduction = "sum" if self.reduction == "mean" else "mean"  # the slip


class NoZeroGrad(DensePort):
    """``zero-grad`` (P36): ``optimizer.zero_grad()`` forgotten: gradients accumulate."""

    def _zero_grad(self) -> None:
        pass  # the bug


class ClipGradNorm(DensePort):
    """P18: torch's own ``clip_grad_norm_`` (``norm + 1e-6``): a convention, not a bug, above the float64 bound."""

    def _clip_by_global_norm(self, grads, limit) -> None:
        self.t.nn.utils.clip_grad_norm_(list(self.model.parameters()), limit)

    def _clip_by_norm(self, grads, limit) -> None:
        for p in self.model.parameters():
            self.t.nn.utils.clip_grad_norm_([p], limit)


MISTAKES = {
    "wrong_momentum": KerasMomentum,
    "nesterov_toggled": NesterovToggled,
    "adam_epsilon": AdamEpsilon,
    "rmsprop_stock": StockRMSprop,
    "adagrad_accumulator": AdagradDefaults,
    "schedule_off_by_one": SchedulerBeforeOptimizer,
    "global_clip": ClipsSwapped,
    "maxnorm_axis": MaxNormAxis,
    "no_transpose": NoTranspose,
    "wrong_reduction": WrongReduction,
    "no_zero_grad": NoZeroGrad,
    "clip_grad_norm": ClipGradNorm,
}

#: wrong port -> the PITFALLS id it reproduces
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
