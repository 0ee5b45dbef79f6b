"""The optimizer of a Keras program: ``apply_gradients`` wrapped on the instance to record the
gradients it is handed and the processed ones (after its own ``clipnorm`` / ``clipvalue`` /
``global_clipnorm``) with the rate it holds at that moment; its learning rate, its slot variables
by canonical name (``m``, ``v``, ``momentum``, ``ms``, ``mg``, ``accumulator``; a Keras SGD
velocity ``v = mu*v - lr*g`` reported as ``-v/lr``) and its hyper-parameters as settings.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: optimizer attribute holding per-variable slots -> canonical slot name (by optimizer family)
_SLOT_LISTS = {
    "sgd": {"momentums": "momentum"},
    "rmsprop": {"_velocities": "ms", "_momentums": "momentum", "_average_gradients": "mg"},
    "adagrad": {"_accumulators": "accumulator"},
    "": {"_momentums": "m", "_velocities": "v", "_velocity_hats": "vhat"},
}


def wrap_apply_gradients(opt, model, rec, own: Callable, lr: Callable) -> None:
    """Wrap ``opt.apply_gradients`` to record into ``rec.record`` the gradients, processed gradients and rate."""
    original = opt.apply_gradients

    def apply_gradients(grads_and_vars, *args, **kw):
        pairs = list(grads_and_vars)
        if rec.record is not None:
            names = {id(v): own(v) for v in model.trainable_weights}
            grads = {names.get(id(v), own(v)): g for g, v in pairs if g is not None}
            rec.record.setdefault("gradients", {k: np.asarray(g) for k, g in grads.items()})
            clipped = [g for g, _ in pairs]
            if any(getattr(opt, a, None) for a in ("clipnorm", "clipvalue", "global_clipnorm")) and hasattr(
                    opt, "_clip_gradients"):
                clipped = opt._clip_gradients(clipped)
            rec.record["processed_gradients"] = {
                names.get(id(v), own(v)): np.asarray(g) for g, (_, v) in zip(clipped, pairs) if g is not None}
            rec.record["learning_rate"] = {"lr": np.asarray(lr())}
        return original(pairs, *args, **kw)

    opt.apply_gradients = apply_gradients


def learning_rate(opt, dtype: str) -> np.ndarray:
    """The rate ``opt`` holds now (a schedule evaluated at its iteration count)."""
    lr = opt.learning_rate
    if callable(lr) and not hasattr(lr, "numpy"):
        lr = lr(opt.iterations)
    return np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr, dtype=dtype)


def build_slots(opt, weights: list, own: Callable) -> tuple[dict, list[str]]:
    """``(slots, notes)``: the optimizer built on ``weights``; slot key -> (variable, is a Keras SGD velocity)."""
    if hasattr(opt, "get_slot_names"):  # tf_keras legacy OptimizerV2
        opt._create_all_weights(weights)
    elif hasattr(opt, "_get_variable_index"):  # Keras 3
        if not opt.built:
            opt.build(weights)
    elif not getattr(opt, "_built", False):  # tf_keras optimizer
        opt.build(weights)
    family = type(opt).__name__.lower()
    lists = _SLOT_LISTS.get(family, _SLOT_LISTS[""])
    slot_vars: dict[str, tuple] = {}
    for w in weights:
        if hasattr(opt, "get_slot_names"):  # legacy OptimizerV2
            for slot in opt.get_slot_names():
                canonical = {"rms": "ms", "momentum": "momentum"}.get(slot, slot)
                slot_vars[f"{own(w)}/{canonical}"] = (opt.get_slot(w, slot), slot == "momentum")
            continue
        if hasattr(opt, "_get_variable_index"):
            i = opt._get_variable_index(w)
        else:
            i = opt._index_dict[opt._var_key(w)]
        for attr, canonical in lists.items():
            values = getattr(opt, attr, None)
            if values and i < len(values) and values[i] is not None:
                slot_vars[f"{own(w)}/{canonical}"] = (values[i], family == "sgd")
    notes = []
    if family == "sgd" and slot_vars:
        notes.append("Keras SGD keeps the velocity v = mu*v - lr*g; slots report -v/lr (TF1's and torch's "
                     "momentum accumulator)")
    return slot_vars, notes


def read_slots(slot_vars: dict, lr: float) -> dict:
    """The slots' values now; a Keras SGD velocity as ``-v/lr``."""
    slots = {}
    for key, (var, velocity) in slot_vars.items():
        value = np.asarray(var.numpy())
        slots[key] = -value / lr if velocity else value
    return slots


def settings(opt, keras_name: str, lr: float) -> dict:
    """The optimizer's class, rate and hyper-parameters, by parity's names."""
    out = {"optimizer": f"{keras_name}:{type(opt).__name__}", "lr": lr}
    for attr, key in (("beta_1", "beta1"), ("beta_2", "beta2"), ("epsilon", "eps"), ("momentum", "momentum"),
                      ("nesterov", "nesterov"), ("rho", "rho"), ("weight_decay", "weight_decay")):
        v = getattr(opt, attr, None)
        if v is None:
            continue
        v = v.numpy() if hasattr(v, "numpy") else v
        out[key] = bool(v) if isinstance(v, bool) else float(v)
    return out
