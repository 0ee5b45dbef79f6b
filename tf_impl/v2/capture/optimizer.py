"""The optimizer of a Keras program: ``apply_gradients`` wrapped on the instance to record the
gradients it is handed and the processed ones (after its own ``clipnorm`` / ``clipvalue`` /
``global_clipnorm``) with the rate it holds at that moment; its learning rate, its slot variables
by canonical name (``m``, ``v``, ``momentum``, ``ms``, ``mg``, ``accumulator``; a Keras SGD
velocity ``v = mu*v - lr*g`` reported as ``-v/lr``) and its hyper-parameters as settings. Its
``weight_decay`` (decoupled: ``w -= lr*wd*w`` before the update, on the variables not excluded) is
reported per variable as ``<variable>/decoupled_decay`` = ``lr*wd`` (docs/stages.md).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: optimizer attribute holding per-variable slots -> canonical slot name (by optimizer family)
_SLOT_LISTS = {
    "sgd": {"momentums": "momentum"},
    "rmsprop": {"_velocities": "ms", "_momentums": "momentum", "_average_gradients": "mg"},
    "adagrad": {"_accumulators": "accumulator"},
    "adadelta": {"_accumulated_grads": "accumulator", "_accumulated_delta_vars": "accum_update"},
    "": {"_momentums": "m", "_velocities": "v", "_velocity_hats": "vhat"},
}


def wrap_apply_gradients(opt, model, rec, own: Callable, lr: Callable) -> None:
    """Wrap ``opt.apply_gradients`` (and Keras 3's ``opt.apply(grads, variables)``, which its apply_gradients calls)
    to record into ``rec.record`` the gradients, processed gradients and rate."""
    original = opt.apply_gradients

    def record(pairs: list) -> None:
        if rec.record is not None:
            grads, processed, rate = applied(opt, pairs, own, np.asarray(lr()))
            rec.record.setdefault("gradients", grads)
            rec.record["processed_gradients"], rec.record["learning_rate"] = processed, rate

    def apply_gradients(grads_and_vars, *args, **kw):
        pairs = list(grads_and_vars)
        record(pairs)
        return original(pairs, *args, **kw)

    opt.apply_gradients = apply_gradients
    direct = getattr(opt, "apply", None)
    if callable(direct) and hasattr(opt, "_trainable_variables"):  # Keras 3 (tf_keras has no apply)
        def apply(grads, trainable_variables=None, *args, **kw):
            grads = list(grads)
            variables = list(trainable_variables) if trainable_variables is not None else list(opt._trainable_variables)
            if len(variables) == len(grads):
                record(list(zip(grads, variables)))  # (again under apply_gradients: the same values)
            return direct(grads, trainable_variables, *args, **kw)

        opt.apply = apply


def applied(opt, pairs: list, own: Callable, rate) -> tuple[dict, dict, dict]:
    """What one ``apply_gradients(pairs)`` of ``opt`` is handed, by variable name: ``(gradients, processed
    gradients (after the optimizer's own clipnorm / clipvalue / global_clipnorm), learning rate stage)``."""
    grads = {own(v): np.asarray(g) for g, v in pairs if g is not None}
    clipped = [g for g, _ in pairs]
    if any(getattr(opt, a, None) for a in ("clipnorm", "clipvalue", "global_clipnorm")) and hasattr(opt, "_clip_gradients"):
        clipped = opt._clip_gradients(clipped)
    processed = {own(v): np.asarray(g) for g, (_, v) in zip(clipped, pairs) if g is not None}
    rate = np.asarray(rate)
    return grads, processed, {"lr": rate, **decoupled_decay(opt, [v for _, v in pairs], own, rate)}


def regularization(model, opt, dtype: str, tf):
    """The weight penalties of the model's regularizers (``kernel_regularizer`` ...: they read a weight
    and no input), read during the step from the weights the step starts from, when the data loss is
    known to hold none of it (fit and the default step add them themselves); None where there is
    none, and 0 for a decoupled ``weight_decay`` alone, so that a coupled counterpart diverges there.
    ``add_loss`` terms and activity regularizers depend on the inputs: part of the ``loss``, not of this."""
    terms = weight_penalties(model)
    if terms:
        return np.asarray(tf.add_n(terms).numpy())
    if getattr(opt, "weight_decay", None):
        return np.zeros((), dtype=dtype)
    return None


def weight_penalties(model) -> list:
    """The values of the model's weight regularizers now (Keras 3: ``_get_regularization_losses``;
    tf_keras: each layer's ``_callable_losses``); never a symbolic ``add_loss`` tensor."""
    if hasattr(model, "_get_regularization_losses"):  # Keras 3: over all trainable weights, sublayers' too
        return [t for t in model._get_regularization_losses() if t is not None]
    terms = []
    for layer in model._flatten_layers(include_self=True):
        for penalty in getattr(layer, "_callable_losses", ()):
            value = penalty()
            if value is not None:
                terms.append(value)
    return terms


def reduce_loss(value, tf):
    """A loss as Keras' ``compile`` reduces it: a per-example loss (a string or a plain function, e.g.
    ``'categorical_crossentropy'``: shape [batch]) averaged (``sum_over_batch_size``, no sample
    weights); a ``Loss`` object's value, already reduced by its own ``reduction``, kept as it is."""
    value = tf.convert_to_tensor(value)
    return tf.reduce_mean(value) if value.shape.rank else value


def decoupled_decay(opt, variables: list, own: Callable, rate) -> dict:
    """``{"<variable>/decoupled_decay": lr*wd}`` for the variables ``opt`` decays (none without ``weight_decay``)."""
    wd = getattr(opt, "weight_decay", None)
    wd = float(wd.numpy() if hasattr(wd, "numpy") else wd) if wd is not None else 0.0
    if not wd:
        return {}
    use = getattr(opt, "_use_weight_decay", lambda v: True)
    return {f"{own(v)}/decoupled_decay": np.asarray(rate * wd, dtype=rate.dtype) for v in variables if use(v)}


def schedule_note(opt):
    """One line saying how the rate of each step is read (None for a constant rate)."""
    decay = getattr(opt, "decay", None) if hasattr(opt, "_decayed_lr") else None
    if decay is not None and float(np.asarray(decay.numpy() if hasattr(decay, "numpy") else decay)) != 0.0:
        return (f"scheduler (Keras legacy decay={float(np.asarray(decay.numpy() if hasattr(decay, 'numpy') else decay)):g}): "
                "the rate of each step is lr / (1 + decay * iterations), per training step, as the optimizer applies it")
    lr = getattr(opt, "learning_rate", None)
    if callable(lr) and not hasattr(lr, "numpy"):
        return (f"scheduler {type(lr).__name__}: a LearningRateSchedule, evaluated at the optimizer's iteration count "
                "(per training step); a LearningRateScheduler callback (per epoch) does not run under parity's steps")
    return None


def learning_rate(opt, dtype: str) -> np.ndarray:
    """The rate ``opt`` holds now (a schedule evaluated at its iteration count; a legacy optimizer's
    ``decay``, ``lr / (1 + decay * iterations)``, as it applies it)."""
    decay = getattr(opt, "decay", None) if hasattr(opt, "_decayed_lr") else None
    if decay is not None and float(np.asarray(decay.numpy() if hasattr(decay, "numpy") else decay)) != 0.0:
        return np.asarray(opt._decayed_lr(dtype).numpy(), dtype=dtype)
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
                canonical = {"rms": "ms", "momentum": "momentum", "accum_grad": "accumulator",
                             "accum_var": "accum_update"}.get(slot, slot)
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
