"""Finding what a TF1 program's dict and graph hold: the dict's keys checked (inputs are placeholders,
the loss a tensor, the optimizer one), the train op (made from ``grads_and_vars`` when not given),
the fed tensors, the ``UPDATE_OPS`` to run with it, each applied gradient's raw ``gradients/...``
tensor, the variables by role (trained, model state, other state, constrained by ``post_ops``)
and each parameter's kind, and the initialisers of every variable.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any, Mapping

from parity.errors import ParityError

from ... import tensorflow
from .forward import _BIAS_ADDS, LAYER_OPS
from .graph import _ASSIGNS, _FLOAT, _READS, _VARIABLE_OPS, _ancestors, _as_op, _is_tensor, _source_variable, \
    _var_op, graph_ops_reading
from .optimizer import apply_input

#: The keys a TF1 ``parity_program()`` may return.
PROGRAM_KEYS = ("inputs", "loss", "train_op", "optimizer", "grads_and_vars", "post_ops", "feeds",
                "session_config", "data", "update_ops", "targets")
_GRAD_SCOPE = re.compile(r"(^|/)gradients(_\d+)?/")


def _dtype_of(v) -> str:
    return v.get_attr("dtype").name


def _shape_of(v):
    return tensorflow().TensorShape(v.get_attr("shape")).as_list()


def check_program(program: Mapping[str, Any], where: str) -> tuple:
    """``(inputs, loss, optimizer, grads_and_vars)`` of the program's dict, each checked (one-line errors)."""
    unknown = sorted(set(program) - set(PROGRAM_KEYS))
    if unknown:
        raise ParityError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(PROGRAM_KEYS)}")
    inputs = program.get("inputs")
    if not isinstance(inputs, Mapping) or not inputs:
        raise ParityError(f"{where}: 'inputs' must be a dict {{batch key: placeholder}}")
    for key, ph in inputs.items():
        if not _is_tensor(ph) or not ph.op.type.startswith("Placeholder"):
            raise ParityError(f"{where}: inputs[{key!r}] is not a placeholder ({type(ph).__name__})")
    loss = program.get("loss")
    if not _is_tensor(loss):
        raise ParityError(f"{where}: 'loss' must be a tensor, not {type(loss).__name__}")
    optimizer = program.get("optimizer")
    if optimizer is not None and not callable(getattr(optimizer, "apply_gradients", None)):
        raise ParityError(f"{where}: 'optimizer' has no apply_gradients ({type(optimizer).__name__})")
    gvs = program.get("grads_and_vars")
    if program.get("train_op") is None and (optimizer is None or gvs is None):
        raise ParityError(f"{where}: give 'train_op', or 'optimizer' with the 'grads_and_vars' it applies")
    return inputs, loss, optimizer, gvs


def train_op_of(program: Mapping[str, Any], optimizer, gvs, graph, notes: list[str]):
    """The train op (an op): the program's, or ``optimizer.apply_gradients(grads_and_vars)`` (noted)."""
    train_op = program.get("train_op")
    if train_op is None:
        with graph.as_default():
            train_op = optimizer.apply_gradients(gvs)
        notes.append("no train_op given: the adapter called optimizer.apply_gradients(grads_and_vars)")
    return _as_op(train_op)


def feed_names(program: Mapping[str, Any], where: str) -> dict:
    """The program's own ``feeds``: tensor name -> value."""
    feeds = dict(program.get("feeds") or {})
    for t in feeds:
        if not _is_tensor(t):
            raise ParityError(f"{where}: 'feeds' keys must be tensors, not {type(t).__name__}")
    return {t.name: v for t, v in feeds.items()}


def find_update_ops(program: Mapping[str, Any], graph, train_deps: set, tf1, notes: list[str]) -> tuple:
    """``(update ops, names of those to run with the train op)``: those it does not already depend on."""
    explicit = program.get("update_ops")
    found = graph.get_collection(tf1.GraphKeys.UPDATE_OPS)
    update_ops = [_as_op(o) for o in (explicit if explicit is not None else found)]
    missing = [o for o in update_ops if o not in train_deps]
    if missing and explicit is None:
        notes.append(
            f"{len(missing)} UPDATE_OPS op(s) are not dependencies of the train op: run with it, as "
            "sess.run([train_op, update_ops]) does (pass 'update_ops': [] if the program never runs them)"
        )
    return update_ops, [o.name for o in missing]


def _raw_gradient(tensor, var):
    """The nearest ``gradients/...`` tensor upstream of ``tensor`` with the variable's shape."""
    shape = tuple(_shape_of(var))
    seen, todo = set(), deque([(tensor, 0)])
    while todo:
        t, depth = todo.popleft()
        if t.name in seen or depth > 12:
            continue
        seen.add(t.name)
        if _GRAD_SCOPE.search(t.op.name) and t.shape.is_fully_defined() and tuple(t.shape.as_list()) == shape:
            return t
        if _GRAD_SCOPE.search(t.op.name):
            continue
        todo.extend((i, depth + 1) for i in t.op.inputs)
    return None


def raw_gradients(trained: dict, var_names: dict, graph, loss, notes: list[str]) -> dict:
    """Parameter name -> the ``gradients/...`` tensor its applied gradient derives from (``tf.gradients`` if none)."""
    raw_names = {}
    for v, op in trained.items():
        processed = apply_input(op, "grad", "delta")
        raw = _raw_gradient(processed, v)
        if raw is None:
            with graph.as_default():
                raw = tensorflow().gradients(loss, [v.outputs[0]])[0]
                if hasattr(raw, "indices"):  # sparse (IndexedSlices: an embedding lookup's rows): densified
                    rows = _shape_of(v)[0]
                    raw = tensorflow().math.unsorted_segment_sum(raw.values, raw.indices, rows)
                    notes.append(f"raw gradient of {var_names[v]}: sparse (the looked-up rows), densified to the "
                                 "variable's shape (rows looked up several times summed)")
            if not hasattr(raw, "indices") and not any(var_names[v] in n for n in notes):
                notes.append(f"raw gradient of {var_names[v]}: not found upstream of the applied "
                             "one; computed by the adapter with tf.gradients(loss, var)")
        raw_names[var_names[v]] = raw.name
    return raw_names


def find_constrained(program: Mapping[str, Any], var_names: dict) -> tuple[list[str], dict]:
    """``(post op names, constrained)``: the variables the ``post_ops`` write, in variable order."""
    post = [_as_op(o) for o in (program.get("post_ops") or [])]
    constrained = {}
    for op in _ancestors(post, control=True) if post else ():
        if op.type in _ASSIGNS and op.inputs:
            src = _source_variable(op.inputs[0]) or (op.inputs[0].op if op.inputs[0].op.type in _VARIABLE_OPS else None)
            if src is not None:
                constrained[var_names[src]] = src.name
    # constrained: the variables the post ops write (as the torch adapter reports the ones its constraint writes)
    return [o.name for o in post], {n: constrained[n] for n in var_names.values() if n in constrained}


def find_model_state(variables: list, trained: dict, owned: dict, forward: list, update_ops: list) -> list:
    """Model state loaded like the weights: non-trained float variables the forward pass reads or the
    update ops assign (BatchNorm moving statistics), or that the forward pass assigns itself through a
    control dependency (TF1 contrib ``batch_norm(updates_collections=None)``: the update runs in the call)."""
    assigned = set()
    roots = list(update_ops or []) + [c for op in forward for c in op.control_inputs]
    for op in _ancestors(roots) if roots else ():
        if op.type in _ASSIGNS and op.inputs:
            src = _source_variable(op.inputs[0]) or op.inputs[0].op
            assigned.add(src)
    read = {_source_variable(t) for op in forward for t in op.inputs}
    return [v for v in variables if v not in trained and v not in owned and (v in read or v in assigned)
            and _dtype_of(v) in _FLOAT]


def param_kind(v, name: str, forward: list) -> str:
    """The kind of variable op ``v`` (named ``name``): by its leaf name, else by the op reading it."""
    leaf = name.split("/")[-1]
    scope = name.split("/")[-2] if "/" in name else ""
    if leaf in ("kernel", "bias") and scope.endswith(("lstm_cell", "rnn_cell")):  # TF1 LSTM / RNN cells' variables
        return "lstm_kernel" if leaf == "kernel" else "lstm_bias"
    for key, kind in (("moving_mean", "bn_mean"), ("moving_variance", "bn_var"), ("gamma", "bn_gamma"),
                      ("beta", "bn_beta")):
        if leaf.startswith(key):
            return kind
    fwd = set(forward)
    if any(c.type in LAYER_OPS["embedding"] and c.inputs[0] is v.outputs[0] for c in v.outputs[0].consumers()):
        return "embedding"  # a resource variable's rows gathered from its handle (tf.nn.embedding_lookup)
    for op in graph_ops_reading(v):
        for consumer in op.outputs[0].consumers():
            if consumer not in fwd and consumer.type not in _READS:
                continue
            idx = [i for i, t in enumerate(consumer.inputs) if t is op.outputs[0]]
            t = consumer.type
            if t in LAYER_OPS["conv"] and 1 in idx:
                return "conv_kernel"
            if t in LAYER_OPS["linear"] and 1 in idx:
                return "dense_kernel"
            if t in LAYER_OPS["embedding"] and 0 in idx:
                return "embedding"
            if t.startswith("FusedBatchNorm"):
                return {1: "bn_gamma", 2: "bn_beta", 3: "bn_mean", 4: "bn_var"}.get(idx[0], "other")
            if t in _BIAS_ADDS and len(_shape_of(v)) == 1:
                return "bias"
    return "other"


def initializers(graph, variables: list, tf1) -> list[str]:
    """The initialiser op names of every variable (a collection's, else the variable's ``.../Assign``)."""
    inits = []
    for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES) + graph.get_collection(
            tf1.GraphKeys.LOCAL_VARIABLES):
        if getattr(v, "initializer", None) is not None:
            inits.append(v.initializer.name)
    covered = {_var_op(v) for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES) + graph.get_collection(
        tf1.GraphKeys.LOCAL_VARIABLES)}
    for v in variables:
        if v not in covered:
            for op in graph.get_operations():
                if op.type in ("AssignVariableOp", "Assign") and op.inputs[0].op is v and op.name.endswith("Assign"):
                    inits.append(op.name)
                    break
    return inits
