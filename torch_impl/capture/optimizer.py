"""Reading the user's torch optimizer: its hyper-parameters (the settings parity reports: lr,
momentum, betas, eps ...), the learning rate and processed gradients of each step (a step
pre-hook sees what ``optimizer.step()`` consumes, after any clipping), the parameters right after
it (a step post-hook), each parameter's raw gradient after ``backward()`` (post-accumulate hooks),
and its state as slots under parity's canonical names (``exp_avg`` -> ``m`` ..., and TF1 Adam's
``beta1_power`` / ``beta2_power``).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = ["SLOT_NAMES", "settings", "slots", "recording_step"]

#: torch optimizer state key -> the canonical slot name parity uses
SLOT_NAMES = {
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "max_exp_avg_sq": "vhat",
    "momentum_buffer": "momentum",
    "square_avg": "ms",
    "grad_avg": "mg",
    "sum": "accumulator",
    "acc_delta": "accum_update",
}

_HYPER = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "eps", "betas", "alpha", "amsgrad", "centered")


def settings(opt, scheduler, model) -> dict:
    """The optimizer's hyper-parameters (its first group), the scheduler's class and the model's mode."""
    g = opt.param_groups[0]
    out: dict = {"optimizer": type(opt).__name__, "framework_convention": "torch"}
    for k in _HYPER:
        if k in g:
            v = g[k]
            v = float(v) if hasattr(v, "item") and not isinstance(v, (tuple, list)) else v
            out[k] = list(v) if isinstance(v, tuple) else v
    if "Adam" in type(opt).__name__:
        out["adam_epsilon"] = float(g.get("eps", 0.0))
    if scheduler is not None:
        out["scheduler"] = type(scheduler).__name__
    out["train_mode"] = bool(model.training)
    return out


def slots(prog) -> dict[str, np.ndarray]:
    """Every optimizer state tensor shaped like its parameter, as ``<param>/<slot>``; Adam's beta powers."""
    opt = prog.opt
    out = {}
    for g in opt.param_groups:
        for p in g["params"]:
            name = prog._pnames[id(p)]
            for key, value in opt.state.get(p, {}).items():
                if key == "step" or not isinstance(value, prog.t.Tensor) or tuple(value.shape) != tuple(p.shape):
                    continue
                out[f"{name}/{SLOT_NAMES.get(key, key)}"] = prog._np(value)
    if "Adam" in type(opt).__name__ and opt.param_groups and opt.param_groups[0]["params"]:
        # TF1 AdamOptimizer's beta1_power / beta2_power after t updates: beta^(t+1)
        g = opt.param_groups[0]
        st = opt.state.get(g["params"][0], {})
        if "step" in st:
            steps = float(st["step"])
            b1, b2 = g["betas"]
            out["beta1_power"] = np.asarray(math.pow(float(b1), steps + 1), dtype=prog.dtype)
            out["beta2_power"] = np.asarray(math.pow(float(b2), steps + 1), dtype=prog.dtype)
    return out


@contextlib.contextmanager
def recording_step(prog, raw: dict, seen: dict):
    """Hooks for one step of ``prog``: raw gradients into ``raw``; what the optimizer step consumed
    (``processed_gradients``, ``learning_rate``) and left (``parameters``, ``versions``) into ``seen``."""

    def on_grad(name):
        def hook(p):
            if p.grad is not None:
                raw[name] = prog._np(p.grad)
        return hook

    def pre_step(opt, args, kwargs):
        pg, lr = {}, {}
        for i, g in enumerate(opt.param_groups):
            lr["lr" if len(opt.param_groups) == 1 else f"lr/{i}"] = np.asarray(float(g["lr"]), dtype=prog.dtype)
            for p in g["params"]:
                if p.grad is not None:
                    pg[prog._pnames[id(p)]] = prog._np(p.grad)
        seen["processed_gradients"], seen["learning_rate"] = pg, lr

    def post_step(opt, args, kwargs):
        seen["parameters"] = {n: prog._np(p) for n, p in prog._params.items() if id(p) in prog._in_opt}
        # in-place writes after this (a max-norm constraint) bump a parameter's version counter
        seen["versions"] = {n: p._version for n, p in prog._params.items()}

    handles = [p.register_post_accumulate_grad_hook(on_grad(n)) for n, p in prog._params.items() if p.requires_grad]
    handles.append(prog.opt.register_step_pre_hook(pre_step))
    handles.append(prog.opt.register_step_post_hook(post_step))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
