"""The optimizer of a TF1 program, read from its apply ops (``ResourceApplyAdam(var, m, v, ..., lr,
..., grad)``): the variables it trains, the gradient and the rate it actually consumed, its
hyper-parameters (from those inputs and from the Python optimizer object), and its slots, through
``optimizer.get_slot`` when the optimizer is given (canonical names, :data:`SLOT_NAMES`), from the
apply ops' inputs otherwise; and the regularisation terms of the loss (:func:`regularization_terms`:
the terms of its top-level sum that read a variable and no fed input, docs/stages.md).
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from parity.errors import ParityError

from .dtype import _shortest
from .graph import _VARIABLE_OPS, _ancestors, _source_variable, _var_op

#: TF slot names (``get_slot_names()`` and the apply ops' argument names) -> canonical names.
SLOT_NAMES = {"m": "m", "v": "v", "vhat": "vhat", "momentum": "momentum", "mom": "momentum",
              "rms": "ms", "ms": "ms", "mg": "mg", "accumulator": "accumulator", "accum": "accumulator",
              "accum_update": "accum_update", "linear": "linear"}

#: the apply ops' inputs that are the learning rate (read as the learning_rate stage)
_RATE_INPUTS = ("lr", "alpha")
_HYPER_INPUTS = ("beta1", "beta2", "epsilon", "momentum", "rho", "l1", "l2", "lr_power", "decay")
_SETTINGS = (("_lr", "lr"), ("_learning_rate", "lr"), ("_beta1", "beta1"), ("_beta2", "beta2"),
             ("_epsilon", "eps"), ("_momentum", "momentum"), ("_use_nesterov", "nesterov"),
             ("_decay", "decay"), ("_initial_accumulator_value", "initial_accumulator_value"),
             ("_centered", "centered"))


def find_applies(graph, train_deps: set, where: str) -> dict:
    """The optimizer's apply ops the train op runs: ``{variable op: apply op}``."""
    applies = [op for op in graph.get_operations()
               if op in train_deps and (re.match(r"^(Resource)?(Sparse)?Apply", op.type) or _is_sparse_sgd(op))]
    trained: dict = {}  # var op -> apply op
    for op in applies:
        var = _var_op(op.inputs[0])
        trained[var] = op
    if not applies and not find_assigns(graph, train_deps):
        raise ParityError(
            f"{where}: the train op runs no optimizer apply op (ResourceApply*) and assigns no variable from a "
            "gradient: nothing to train; give an optimizer's train op, or the train op of your own update"
        )
    return trained


#: the ops a hand-written update writes a variable with (``tf.assign_sub(v, lr * g)``, ``v.assign_sub(...)``)
_GRADIENTS = re.compile(r"(^|/)gradients(_\d+)?/")  # the ops tf.gradients adds (analyse.py's scope)
_ASSIGNS = ("AssignSubVariableOp", "AssignSub", "AssignAddVariableOp", "AssignAdd", "AssignVariableOp", "Assign")

HAND_WRITTEN_NOTE = ("hand-written update (the train op assigns the variables itself, no optimizer apply op): the "
                     "loss, the raw gradients and the parameters after each step (the update) are compared; the "
                     "learning rate, optimizer slots and the gradient the update consumed cannot be read and are not "
                     "compared")


def find_assigns(graph, train_deps: set) -> dict:
    """A hand-written update's ``{variable op: assign op}``: the assign ops the train op runs whose value
    derives from a gradient (a ``gradients/...`` op upstream), one per variable (the last)."""
    found: dict = {}
    for op in graph.get_operations():
        if op in train_deps and op.type in _ASSIGNS and len(op.inputs) == 2:
            above = _ancestors([op.inputs[1].op])
            if any(_GRADIENTS.search(a.name) for a in above):
                found[_var_op(op.inputs[0])] = op
    return found


def _is_sparse_sgd(op) -> bool:
    """Plain gradient descent on a sparse gradient (an embedding table's looked-up rows): TF1 applies it as
    ``ResourceScatterAdd(var, indices, Neg(grad) * lr)`` under ``.../update_<var>/``, with no Apply op."""
    if op.type not in ("ResourceScatterAdd", "ScatterAdd") or "/update_" not in op.name or len(op.inputs) < 3:
        return False
    mul = op.inputs[2].op
    return mul.type == "Mul" and len(mul.inputs) == 2 and mul.inputs[0].op.type == "Neg"


def _input_names(op) -> list[str]:
    return [a.name for a in op.op_def.input_arg]


def apply_input(op, *options):
    """The input of apply op ``op`` named by the first of ``options`` it has, or None (a sparse
    gradient-descent scatter answers ``grad``, ``lr`` and ``indices`` as an apply op would)."""
    if _is_sparse_sgd(op):
        mul = op.inputs[2].op
        parts = {"grad": mul.inputs[0].op.inputs[0], "delta": mul.inputs[0].op.inputs[0], "lr": mul.inputs[1],
                 "alpha": mul.inputs[1], "indices": op.inputs[1]}
        return next((parts[o] for o in options if o in parts), None)
    names = _input_names(op)
    for o in options:
        if o in names:
            return op.inputs[names.index(o)]
    return None


def _dense_grad(op, var):
    """The gradient apply op ``op`` consumes; a sparse apply's rows (``grad`` at ``indices``) made dense, the
    variable's shape (a row looked up twice summed), so that it compares with a dense gradient."""
    grad, indices = apply_input(op, "grad", "delta"), apply_input(op, "indices")
    if indices is None or ("Sparse" not in op.type and not _is_sparse_sgd(op)):
        return grad
    from ... import tensorflow

    tf = tensorflow()
    with op.graph.as_default():
        rows = tf.TensorShape(var.get_attr("shape")).as_list()[0]
        return tf.math.unsorted_segment_sum(grad, indices, rows)


def read_apply_ops(trained: dict, var_names: dict) -> tuple:
    """``(processed, apply_type, lr, hyper, nesterov)`` as the apply ops consume them (tensor names).

    processed: parameter name -> the gradient applied; apply_type: the optimizer (``Adam``);
    lr: the rate tensor or None; hyper: the other hyper-parameter inputs; nesterov: the first
    apply op's ``use_nesterov`` (None without one).
    """
    processed = {var_names[v]: _dense_grad(op, v).name for v, op in trained.items()}
    applies = [op for op in trained.values() if not _is_sparse_sgd(op)]  # a scatter says no optimizer name
    first = applies[0] if applies else trained[next(iter(trained))]
    apply_type = re.sub(r"^(Resource)?(Sparse)?Apply", "", first.type) if applies else "GradientDescent"
    lr = apply_input(first, "lr", "alpha")
    hyper = {}
    for a in _HYPER_INPUTS:
        t = apply_input(first, a)
        if t is not None:
            hyper[a] = t.name
    nesterov = bool(first.get_attr("use_nesterov")) if "use_nesterov" in first.node_def.attr else None
    return processed, apply_type, (lr.name if lr is not None else None), hyper, nesterov


def find_slots(optimizer, gvs, graph, trained: dict, var_names: dict, tf1) -> tuple[dict, dict]:
    """``(slots, owned)``: slot key -> variable op name, and the optimizer's variable ops (``{op: True}``)."""
    owned: dict = {}
    slots: dict[str, str] = {}
    if optimizer is not None and callable(getattr(optimizer, "get_slot_names", None)):
        pyvars = {_var_op(pv): pv for gv in (gvs or []) for pv in [gv[1]] if pv is not None}
        for g in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES):
            pyvars.setdefault(_var_op(g), g)
        for v in trained:
            pv = pyvars.get(v)
            if pv is None:
                continue
            for slot in optimizer.get_slot_names():
                s = optimizer.get_slot(pv, slot)
                if s is not None:
                    sop = _var_op(s)
                    owned[sop] = True
                    slots[f"{var_names[v]}/{SLOT_NAMES.get(slot, slot)}"] = sop.name
    for v, op in trained.items():
        for i, a in enumerate(_input_names(op)):
            src = _source_variable(op.inputs[i])
            if i == 0 or src is None or src in owned:
                continue
            owned[src] = True
            if a in _RATE_INPUTS:  # a rate held in a variable (a program's lr variable): the rate, not a slot
                continue
            if a.endswith("_power") or src not in trained:
                slot = "momentum" if a == "accum" and "Momentum" in op.type else SLOT_NAMES.get(a, a)
                key = var_names[src] if a.endswith("_power") else f"{var_names[v]}/{slot}"
                slots.setdefault(key, src.name)
    if optimizer is not None:
        for pv in getattr(optimizer, "_non_slot_variables", lambda: [])():
            sop = _var_op(pv)
            owned[sop] = True
            slots.setdefault(var_names[sop].split("/")[-1], sop.name)
    return slots, owned


def read_settings(optimizer) -> dict:
    """The Python optimizer object's hyper-parameters (numbers and flags), by parity's names."""
    out: dict = {}
    if optimizer is not None:
        out["optimizer"] = f"{type(optimizer).__module__.split('.')[0]}:{type(optimizer).__name__}"
        for attr, key in _SETTINGS:
            v = getattr(optimizer, attr, None)
            if isinstance(v, (bool, int, float, np.floating)) and key not in out:
                out[key] = v if isinstance(v, bool) else float(v)
    return out


def resolve_settings(settings: dict, hyper: dict, run: Callable, dtype: str, apply_type: str, nesterov) -> None:
    """Complete ``settings`` with the apply op's hyper-parameter inputs, each evaluated by ``run(tensor)``."""
    for k, t in hyper.items():
        try:
            v = float(run(t))
        except Exception:  # a rate that depends on the batch (none known): not a setting
            continue
        settings.setdefault({"epsilon": "eps"}.get(k, k), _shortest(v) if dtype == "float32" else v)
    settings.setdefault("optimizer", apply_type)
    if nesterov is not None:
        settings.setdefault("nesterov", nesterov)


_SUMS = ("Add", "AddV2", "AddN", "Identity")


def regularization_terms(loss, inputs) -> list[str]:
    """The tensor names of the terms of ``loss``'s top-level (scalar) sum that read a variable and
    depend on none of ``inputs`` (``wd * tf.add_n([tf.nn.l2_loss(v) ...])``,
    ``tf.losses.get_regularization_loss()``): the regularisation. Empty when there is none, or when
    every term is one (no data loss left to tell apart)."""
    input_ops = {t.op for t in inputs}
    terms, todo = [], [loss]
    while todo:
        t = todo.pop()
        if t.op.type in _SUMS and t.shape.rank == 0:
            todo.extend(t.op.inputs)
        else:
            terms.append(t)
    reg = []
    for t in terms:
        above = _ancestors([t.op])
        if not (above & input_ops) and any(op.type in _VARIABLE_OPS for op in above):
            reg.append(t)
    return [t.name for t in reg] if reg and len(reg) < len(terms) else []
