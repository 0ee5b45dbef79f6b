"""Rewriting a TF1 GraphDef from one float dtype to the other (float32 -> float64 for a float64 run).

* Every type attribute (``T``, ``dtype``, ``SrcT``...) and every ``Const`` of the source dtype is
  rewritten, except those tied to a tensor whose type is fixed by its op: a TensorArray's *flow*
  (``TensorArrayV3:1``, ``TensorArrayWriteV3``'s output, ... always float32) and everything that
  carries it through a ``tf.while_loop`` (``Enter``, ``Merge``, ``Switch``, ``NextIteration``,
  ``Exit``, ``Identity``, the gradient's stacks). Which attributes those are is found by
  unifying, over every edge of the graph, the producer's output type with the consumer's
  input type as the ops' definitions state them (:func:`_pinned`). A flow is a dummy value
  that orders the TensorArray's reads and writes: keeping it float32 changes no number.
* A float32 scalar ``Const`` becomes the float64 of the shortest decimal that prints it
  (:func:`_shortest`); an array ``Const`` does so when each of its values is a short decimal
  (at most 6 significant digits, which float32 always reproduces), else it keeps its
  float32 values, listed as left.
* An op *attribute* of type float is float32 in every graph (``AttrValue.f``): ``LeakyRelu``
  (and its gradient) is rewritten into ``x > 0 ? x : x * alpha`` with ``alpha`` a float64
  constant of the decimal the attribute prints as (what TF's kernel computes, with the
  program's alpha); any other float attribute whose value is not exact is listed as left.
* A rewritten op with no kernel for the new dtype (``FusedBatchNorm``, ``LRN``...) or a graph
  that does not import once rewritten raises :class:`parity.portkit.program.DtypeError` with
  the reason: that dtype is not run, the other still is.
"""

from __future__ import annotations

import numpy as np

from ... import tensorflow

_PIN = "<fixed>"
# TensorArray / stack element types, joined through the handle to their container's
_CONTAINERS = {"StackV2": "elem_type", "TensorArrayV3": "dtype"}
_ELEMENT = {"StackPushV2": "T", "StackPopV2": "elem_type", "TensorArrayWriteV3": "T", "TensorArrayReadV3": "dtype",
            "TensorArrayGatherV3": "dtype", "TensorArrayScatterV3": "T", "TensorArrayConcatV3": "dtype",
            "TensorArraySplitV3": "T"}
_HANDLE_PASS = ("Enter", "RefEnter", "Identity", "TensorArrayGradV3", "TensorArrayGradWithShape", "Switch", "Merge",
                "NextIteration", "Exit")
_FUSED_BN = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "FusedBatchNormGrad",
             "FusedBatchNormGradV2", "FusedBatchNormGradV3"}
_SHORT_DIGITS = 6  # FLT_DIG: every decimal of at most 6 significant digits survives float32 exactly
_ARRAY_LIMIT = 4096  # array constants checked value by value up to this size (larger: cast, listed)


def _digits(text: str) -> int:
    """Significant digits of a positional decimal ("0.00120" -> 2, "300" -> 1)."""
    return len(text.replace("-", "").replace(".", "").strip("0"))


def _decimal(value: float) -> tuple[float, int]:
    """The float64 of the shortest decimal that prints float32 ``value``, and its significant digits.

    A reciprocal of a short decimal (``1 / 0.75``, dropout's scale) is taken as that reciprocal
    when its decimal is shorter: float32(1.3333334) -> 1 / 0.75.
    """
    direct = np.format_float_positional(np.float32(value), unique=True, trim="-")
    if value != 0:
        inverse = np.format_float_positional(np.float32(1.0 / np.float64(np.float32(value))), unique=True, trim="-")
        candidate = 1.0 / float(inverse)
        if _digits(inverse) + 2 < _digits(direct) and np.float32(candidate) == np.float32(value):
            return candidate, _digits(inverse)
    return float(direct), _digits(direct)


def _shortest(value: float) -> float:
    """The float64 of the shortest decimal that prints float32 ``value`` (what the author typed)."""
    return _decimal(value)[0]


def _is_short(value: float) -> bool:
    """Whether float32 ``value`` is a short decimal (or its reciprocal): at most 6 significant digits."""
    return _decimal(value)[1] <= _SHORT_DIGITS


class Retyped(list):
    """What :func:`_retype_graph_def` did: the scalar constants taken as decimals (the list itself),
    ``other``: the array constants and op attributes taken as decimals, ``left``: the float32 values
    kept as they are. True when any of the three is non-empty."""

    def __init__(self):
        super().__init__()
        self.other: list[str] = []
        self.left: list[str] = []

    def __bool__(self) -> bool:
        return bool(len(self) or self.other or self.left)


def _pinned(gdef, src) -> set:
    """The type attributes ((node, attr) or (node, attr, i)) of ``gdef`` tied to a tensor fixed to ``src``."""
    from tensorflow.python.framework import op_def_registry

    nodes = {n.name: n for n in gdef.node}
    parent: dict = {}

    def find(x):
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def union(a, b):
        if a is None or b is None:
            return
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    def expand(node, args):
        out = []
        for a in args:
            if a.type_list_attr:
                n = len(node.attr[a.type_list_attr].list.type) if a.type_list_attr in node.attr else 0
                out.extend((node.name, a.type_list_attr, i) for i in range(n))
                continue
            n = node.attr[a.number_attr].i if a.number_attr and a.number_attr in node.attr else 1
            key = (node.name, a.type_attr) if a.type_attr else (_PIN if a.type == src else None)
            out.extend([key] * n)
        return out

    def container(name):
        node = nodes.get(name.lstrip("^").split(":")[0])
        for _ in range(64):
            if node is None or node.op in _CONTAINERS:
                return node
            if node.op not in _HANDLE_PASS or not node.input:
                return None
            node = nodes.get(node.input[0].lstrip("^").split(":")[0])
        return None

    sig = {}
    for node in gdef.node:
        op_def = op_def_registry.get(node.op)
        sig[node.name] = (expand(node, op_def.input_arg), expand(node, op_def.output_arg)) if op_def else None
    for node in gdef.node:
        if sig[node.name] is None:
            continue
        ins = sig[node.name][0]
        data = [name for name in node.input if not name.startswith("^")]
        for j, name in enumerate(data[:len(ins)]):
            producer, _, k = name.partition(":")
            outs = (sig.get(producer) or (None, []))[1]
            k = int(k or 0)
            if k < len(outs):
                union(outs[k], ins[j])
        if node.op in _ELEMENT and data:
            box = container(data[0])
            if box is not None:
                union((node.name, _ELEMENT[node.op]), (box.name, _CONTAINERS[box.op]))
    if _PIN not in parent:
        return set()
    root = find(_PIN)
    return {key for key in parent if key != _PIN and find(key) == root}


def _initial_value(node, consumers) -> bool:
    """A constant that only initialises a variable (its value is replaced by the one parity loads)."""
    low = node.name.lower()
    if "initializer" in low or "initial_value" in low:
        return True
    users = consumers.get(node.name, [])
    return bool(users) and all(u.op in ("Assign", "AssignVariableOp") for u in users)


def _retype_const(node, tf, dtype, consumers, out: Retyped) -> None:
    value = tf.make_ndarray(node.attr["value"].tensor)
    np_dst = np.float64 if dtype == "float64" else np.float32
    new = value.astype(np_dst)
    if dtype == "float64" and value.ndim == 0:
        new = np.asarray(_shortest(float(value)), np.float64)
        if float(new) != float(value) and "Initializer/" not in node.name and "initializer" not in node.name:
            out.append(f"{node.name} = {float(new)!r} (float32: {float(value)!r})")
    elif dtype == "float64" and value.size and not _initial_value(node, consumers):
        flat = value.ravel().astype(np.float64)
        if np.array_equal(flat, np.round(flat * 1024) / 1024):
            pass  # multiples of 1/1024 (zeros, ones, halves): exact in either dtype, nothing rounded
        elif flat.size <= _ARRAY_LIMIT and all(_is_short(v) for v in flat):
            new = np.array([_shortest(v) for v in flat], np.float64).reshape(value.shape)
            out.other.append(f"{node.name} {list(value.shape)} = {', '.join(repr(float(v)) for v in new.ravel()[:4])}"
                             f"{', ...' if flat.size > 4 else ''}")
        else:
            out.left.append(f"{node.name} {list(value.shape)} (an array constant, not short decimals: its float32 values kept)")
    node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(new))


def _leaky_relu(gdef, node, alpha: float) -> None:
    """Rewrite LeakyRelu / LeakyReluGrad ``node`` (float64) into select(x > 0, x, x * alpha), alpha a float64 Const."""
    tf = tensorflow()
    data = [i for i in node.input if not i.startswith("^")]
    control = [i for i in node.input if i.startswith("^")]
    value, features = (data[0], data[0]) if node.op == "LeakyRelu" else (data[0], data[1])
    base, device = node.name, node.device

    def add(name, op, inputs, **attrs):
        n = gdef.node.add()
        n.name, n.op, n.device = name, op, device
        n.input.extend(inputs)
        for key, v in attrs.items():
            n.attr[key].CopyFrom(v)
        return n

    from tensorflow.core.framework.attr_value_pb2 import AttrValue

    T = AttrValue(type=tf.float64.as_datatype_enum)
    for name, v in (("alpha", alpha), ("zero", 0.0)):
        add(f"{base}/parity_{name}", "Const", [], dtype=T, value=AttrValue(tensor=tf.make_tensor_proto(np.float64(v))))
    add(f"{base}/parity_positive", "Greater", [features, f"{base}/parity_zero"], T=T)
    add(f"{base}/parity_scaled", "Mul", [value, f"{base}/parity_alpha"], T=T)
    node.op = "SelectV2"
    del node.input[:]
    node.input.extend([f"{base}/parity_positive", value, f"{base}/parity_scaled"] + control)
    for key in list(node.attr):
        if key != "T":
            del node.attr[key]


def _no_kernel(node, cache: dict) -> bool:
    """Whether ``node``'s op has CPU kernels, none for its (rewritten) type attributes."""
    from tensorflow.python.framework import kernels

    if node.op not in cache:
        cache[node.op] = [k for k in kernels.get_registered_kernels_for_op(node.op).kernel
                          if k.device_type in ("CPU", "DEFAULT") and not k.label]
    cpu = cache[node.op]
    if not cpu:
        return False
    for k in cpu:
        ok = True
        for c in k.constraint:
            if c.name not in node.attr:
                continue
            a, allowed = node.attr[c.name], set(c.allowed_values.list.type)
            types = list(a.list.type) if a.HasField("list") else ([a.type] if a.HasField("type") else [])
            if any(t not in allowed for t in types):
                ok = False
                break
        if ok:
            return False
    return True


def _retype_graph_def(gdef, dtype: str) -> Retyped:
    """Rewrite every float32 of ``gdef`` to ``dtype`` (in place); return what was taken as decimals or left."""
    tf = tensorflow()
    from tensorflow.core.framework import types_pb2

    from parity.portkit.program import DtypeError

    src, dst = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE) if dtype == "float64" else (types_pb2.DT_DOUBLE, types_pb2.DT_FLOAT)
    out = Retyped()
    pinned = _pinned(gdef, src)
    consumers: dict = {}
    for node in gdef.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node)

    def nodes():  # (node, whether it is in the graph itself: not in a function of its library)
        for node in list(gdef.node):
            yield node, True
        for fn in gdef.library.function:
            for node in fn.node_def:
                yield node, False

    kernels: dict = {}
    for node, top in nodes():
        if node.op in _FUSED_BN and dtype == "float64" and node.attr["T"].type == src:
            raise DtypeError(
                f"the program cannot run in float64: {node.op} ({node.name}) has float32 kernels only; "
                "fix: build it with tf.nn.fused_batch_norm (parity computes that one in float64) or fused=False"
            )
        keep = pinned if top else ()  # the unification covers the graph's own nodes, not its functions'
        if node.op == "Const" and node.attr["dtype"].type == src and (node.name, "dtype") not in keep:
            _retype_const(node, tf, dtype, consumers, out)
        changed = False
        for key in node.attr:
            attr = node.attr[key]
            if attr.HasField("type") and attr.type == src and (node.name, key) not in keep:
                attr.type, changed = dst, True
            if attr.HasField("list"):
                for i, t in enumerate(attr.list.type):
                    if t == src and (node.name, key, i) not in keep:
                        attr.list.type[i], changed = dst, True
        computes = any(node.attr[k].type == dst for k in node.attr if node.attr[k].HasField("type"))
        if dtype != "float64" or not computes:
            continue
        if node.op in ("LeakyRelu", "LeakyReluGrad") and top:
            alpha = float(np.float32(node.attr["alpha"].f))
            if node.op == "LeakyRelu" and _shortest(alpha) != alpha:
                out.other.append(f"{node.name} alpha = {_shortest(alpha)!r} (a float32 attribute: {alpha!r})")
            _leaky_relu(gdef, node, _shortest(alpha))
            continue
        if changed and _no_kernel(node, kernels):
            raise DtypeError(f"the program cannot run in float64: {node.op} ({node.name}) has no float64 kernel")
        for key in node.attr:
            f = node.attr[key]
            for v in ([f.f] if f.HasField("f") else list(f.list.f) if f.HasField("list") else []):
                if float(np.float32(v)) != _shortest(v):
                    out.left.append(f"{node.name} {key} = {float(np.float32(v))!r} ({node.op}'s float32 attribute, "
                                    f"meant {_shortest(v)!r}?)")
    for fn in gdef.library.function:
        for arg in list(fn.signature.input_arg) + list(fn.signature.output_arg):
            if arg.type == src:
                arg.type = dst
    try:  # the rewritten graph must import: a failure here is a graph parity cannot rebuild in ``dtype``
        with tf.Graph().as_default():
            tf.compat.v1.import_graph_def(gdef, name="")
    except Exception as exc:  # noqa: BLE001  (any import error: that dtype cannot run, the other still does)
        line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DtypeError(f"the program's graph could not be rebuilt in {dtype} ({type(exc).__name__}: {line})") from None
    return out
