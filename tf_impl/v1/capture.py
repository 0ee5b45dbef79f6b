"""Capture a TF1 graph + Session program as its author wrote it, and record every stage.

The user's file has a ``parity_program()`` that builds the program in the default graph
(placeholders, variables, loss, optimizer, ``compute_gradients`` / clipping /
``apply_gradients`` or ``minimize``) and returns a plain dict (see
``/docs/own-model.md`` and the contract in ``parity/program/prepare.py``)::

    {"inputs": {"x": x_ph, "y": y_ph}, "loss": loss, "train_op": train_op,
     "optimizer": opt, "grads_and_vars": capped, "post_ops": [...], "feeds": {keep_prob: 0.75}}

Where each stage comes from (nothing of the user's graph is edited, only read or fed):

* forward: the outputs of the layer ops on the path from the inputs to the loss, in graph
  (creation) order, named by op name (so by name scope): a matmul/conv with the bias add
  that follows it, activations, pooling, batch normalisation, dropout, embedding lookups.
  :meth:`TF1Program.forward_kinds` says which kind each one is.
* gradients (raw): the ``gradients/...`` tensor each applied gradient derives from (the
  output of ``compute_gradients``, before any clipping).
* processed gradients, learning rate, slots: the inputs of the optimizer's apply ops
  (``ResourceApplyAdam(var, m, v, ..., lr, ..., grad)``): the gradient and the rate the
  optimizer actually consumed; slots through ``optimizer.get_slot`` when the optimizer is
  given (canonical names), from the apply ops' inputs otherwise.
* parameters, slots, state: the variables after the train op (and the ``UPDATE_OPS``),
  read in a second run; state is every variable that is neither trained nor the
  optimizer's (BatchNorm moving statistics, ``global_step``, EMA shadows).
* constrained: the variables the ``post_ops`` write, read after they ran.

Dropout: ``tf.nn.dropout`` draws ``random_uniform`` and keeps ``random >= rate``; the
adapter feeds the random tensor with parity's keep mask (1 keeps, 0 drops), so the
program's own dropout op computes ``where(mask, x / keep_prob, 0)``.

float64: the program is built once more in a fresh graph with every float32 placeholder
and variable made float64 (so layers that pick a kernel by dtype pick the float64 one),
then every float32 left in the graph (the optimizers' Python-float hyper-parameters, which
TF1 turns into float32 constants; casts to float32 inside ``tf.losses``) is rewritten to
float64 in the GraphDef before it is imported into the graph that runs. A float32
scalar constant is taken as the shortest decimal that prints it (``0.001``, not
``0.0010000000474974513``): what the author typed. Each such constant is listed in
:meth:`TF1Program.notes`, with the fix that makes the program run in float64 as written.
FusedBatchNorm has float32 kernels only: a 4-D ``tf.layers.batch_normalization`` is built
non-fused in float64, and its moving-variance update is scaled by n/(n-1) so it keeps the
fused kernel's (Bessel-corrected) convention (:func:`fused_batch_norm_convention`); a graph
that calls ``tf.nn.fused_batch_norm`` itself cannot run in float64 and says so
(:class:`parity.portkit.program.DtypeError`, with the fix).

Not captured: updates written by hand (``w.assign_sub(lr * g)``: no optimizer apply op to
read the consumed gradient and rate from: refused), sparse (``IndexedSlices``) gradients,
layer outputs inside ``tf.while_loop`` (``dynamic_rnn``), and a dropout whose random tensor
feeds no ``where(random >= rate, x / keep_prob, 0)`` parity knows (a note says so).
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from typing import Any, Callable, Mapping

import numpy as np

from parity.errors import ParityError

from .. import tensorflow

__all__ = ["capture", "TF1Program", "PROGRAM_KEYS", "SLOT_NAMES", "LAYER_OPS"]

#: The keys a TF1 ``parity_program()`` may return.
PROGRAM_KEYS = ("inputs", "loss", "train_op", "optimizer", "grads_and_vars", "post_ops", "feeds",
                "session_config", "data", "update_ops", "targets")

#: TF slot names (``get_slot_names()`` and the apply ops' argument names) -> canonical names.
SLOT_NAMES = {"m": "m", "v": "v", "vhat": "vhat", "momentum": "momentum", "mom": "momentum",
              "rms": "ms", "ms": "ms", "mg": "mg", "accumulator": "accumulator", "accum": "accumulator",
              "accum_update": "accum_update", "linear": "linear"}

#: Op types whose output is a layer output, by kind (see the module docstring).
LAYER_OPS = {
    "linear": ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"),
    "conv": ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput"),
    "activation": ("Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Softplus",
                   "Softsign"),
    "pool": ("MaxPool", "MaxPoolV2", "AvgPool", "MaxPool3D", "AvgPool3D"),
    "norm": ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"),
    "embedding": ("GatherV2", "ResourceGather"),
}
_BIAS_ADDS = ("BiasAdd", "Add", "AddV2")
_READS = ("ReadVariableOp", "Identity", "Cast", "Enter", "Switch")
_VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")
_ASSIGNS = ("AssignVariableOp", "Assign", "AssignSubVariableOp", "AssignAddVariableOp", "AssignSub", "AssignAdd")
_GRAD_SCOPE = re.compile(r"(^|/)gradients(_\d+)?/")
_FLOAT = {"float32", "float64"}
_BN_TOUCHED: list[str] = []  # layers fused_batch_norm_convention aligned in the last float64 build


def _tf():
    return tensorflow()


def _records():
    """``ParamSpec`` and ``DropoutSite`` of :mod:`parity.program.prepare` (same fields before it exists)."""
    try:
        from parity.portkit.program import DropoutSite, ParamSpec
    except ImportError:  # parity/program/prepare.py not landed yet: the contract's fields, duck-typed
        from collections import namedtuple

        ParamSpec = namedtuple("ParamSpec", "name shape kind layer trainable")
        DropoutSite = namedtuple("DropoutSite", "index name shape_channel_last rate")
    return ParamSpec, DropoutSite


# -- building ---------------------------------------------------------------------------------

@contextlib.contextmanager
def fused_batch_norm_convention(dtype: str, touched: list | None = None):
    """In float64, give tf_keras' non-fused BatchNormalization the fused kernel's moving variance.

    FusedBatchNorm has float32 kernels only, so a 4-D BatchNormalization that runs fused in
    float32 runs non-fused in float64, and the two update the moving variance differently:
    fused with the Bessel-corrected batch variance (n / (n - 1), n = batch * height * width),
    non-fused with the biased one. Here the non-fused update of such a layer is scaled by
    n / (n - 1), so a float64 run computes what the float32 program computes. The names of
    the layers touched are appended to ``touched``.
    """
    try:
        from tf_keras.src.layers.normalization.batch_normalization import BatchNormalizationBase as BN
    except ImportError:  # no tf_keras: nothing to align
        yield
        return
    if dtype != "float64":
        yield
        return
    tf = _tf()
    call, assign = BN.call, BN._assign_moving_average

    def patched_call(self, inputs, training=None, mask=None):
        rank = inputs.shape.rank
        self._parity_bessel = None
        if (not self.fused and rank in (4, 5) and inputs.dtype == tf.float64 and self.virtual_batch_size is None
                and not self.renorm and self.adjustment is None):
            n = tf.cast(tf.size(inputs), tf.float64) / tf.cast(tf.size(self.moving_variance), tf.float64)
            self._parity_bessel = n / (n - 1.0)
            if touched is not None and self.name not in touched:
                touched.append(self.name)
        return call(self, inputs, training=training, mask=mask)

    def patched_assign(self, variable, value, momentum, inputs_size):
        if getattr(self, "_parity_bessel", None) is not None and variable is self.moving_variance:
            value = value * self._parity_bessel
        return assign(self, variable, value, momentum, inputs_size)

    BN.call, BN._assign_moving_average = patched_call, patched_assign
    try:
        yield
    finally:
        BN.call, BN._assign_moving_average = call, assign


def _call_program(fn: Callable[[], Any], graph, override: str | None) -> dict:
    """Call ``fn`` with ``graph`` as default, control flow v1, and float32 roots made ``override``."""
    tf = _tf()
    tf1 = tf.compat.v1
    from tensorflow.python.ops import control_flow_util

    was_v2 = control_flow_util.ENABLE_CONTROL_FLOW_V2
    placeholder = tf1.placeholder
    target = {"float64": tf.float64, "float32": tf.float32}.get(override or "")
    source = {"float64": tf.float32, "float32": tf.float64}.get(override or "")

    def retyped_placeholder(dtype, shape=None, name=None):
        if target is not None and tf.as_dtype(dtype) == source:
            dtype = target
        return placeholder(dtype, shape=shape, name=name)

    def creator(next_creator, **kwargs):
        dtype = kwargs.get("dtype")
        init = kwargs.get("initial_value")
        if dtype is not None and tf.as_dtype(dtype).base_dtype == source:
            kwargs["dtype"] = target
        # a Python-float initial value (Adam's beta1_power) stays as the program makes it: the
        # GraphDef rewrite that follows turns it, and the ops that use it, into float64 together
        if callable(init) and kwargs.get("dtype") == target:
            kwargs["initial_value"] = lambda: tf.cast(init(), target)
        elif tf.is_tensor(init) and init.dtype.base_dtype == source:
            kwargs["initial_value"] = tf.cast(init, target)
            kwargs["dtype"] = target
        return next_creator(**kwargs)

    control_flow_util.ENABLE_CONTROL_FLOW_V2 = False  # TF1's Switch/Merge: tensors stay feedable
    try:
        with graph.as_default():
            if target is None:
                return fn()
            tf1.placeholder = retyped_placeholder
            with tf1.variable_creator_scope(creator), tf.variable_creator_scope(creator), \
                    fused_batch_norm_convention(override, _BN_TOUCHED):
                return fn()
    finally:
        tf1.placeholder = placeholder
        control_flow_util.ENABLE_CONTROL_FLOW_V2 = was_v2


def _shortest(value: float) -> float:
    """The float64 of the shortest decimal that prints float32 ``value`` (what the author typed).

    A reciprocal of a short decimal (``1 / 0.75``, dropout's scale) is taken as that reciprocal
    when its decimal is shorter: float32(1.3333334) -> 1 / 0.75.
    """
    def digits(text: str) -> int:
        return len(text.replace("-", "").replace(".", "").lstrip("0"))

    direct = np.format_float_positional(np.float32(value), unique=True, trim="-")
    if value != 0:
        inverse = np.format_float_positional(np.float32(1.0 / np.float64(np.float32(value))), unique=True, trim="-")
        candidate = 1.0 / float(inverse)
        if digits(inverse) + 2 < digits(direct) and np.float32(candidate) == np.float32(value):
            return candidate
    return float(direct)


def _retype_attr(attr, src, dst) -> bool:
    changed = False
    if attr.HasField("type") and attr.type == src:
        attr.type, changed = dst, True
    if attr.HasField("list"):
        for i, t in enumerate(attr.list.type):
            if t == src:
                attr.list.type[i], changed = dst, True
    return changed


def _retype_graph_def(gdef, dtype: str) -> list[str]:
    """Rewrite every float32 of ``gdef`` to ``dtype`` (in place); return the constants recovered."""
    tf = _tf()
    from tensorflow.core.framework import types_pb2

    src, dst = (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE) if dtype == "float64" else (types_pb2.DT_DOUBLE, types_pb2.DT_FLOAT)
    np_dst = np.float64 if dtype == "float64" else np.float32
    recovered: list[str] = []
    no_kernel = {"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "FusedBatchNormGrad",
                 "FusedBatchNormGradV2", "FusedBatchNormGradV3"}

    def nodes():
        yield from gdef.node
        for fn in gdef.library.function:
            yield from fn.node_def

    for node in nodes():
        if node.op in no_kernel and dtype == "float64" and node.attr["T"].type == src:
            from parity.portkit.program import DtypeError

            raise DtypeError(
                f"the program cannot run in float64: {node.op} ({node.name}) has float32 kernels only; "
                "fix: build the batch normalisation with fused=False (tf.nn.fused_batch_norm has no float64 kernel)"
            )
        if node.op == "Const" and node.attr["dtype"].type == src:
            value = tf.make_ndarray(node.attr["value"].tensor)
            if dtype == "float64" and value.ndim == 0:
                new = np.asarray(_shortest(float(value)), np.float64)
                if float(new) != float(value) and "Initializer/" not in node.name and "initializer" not in node.name:
                    recovered.append(f"{node.name} = {float(new)!r} (float32: {float(value)!r})")
            else:
                new = value.astype(np_dst)
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(new))
        for key in node.attr:
            _retype_attr(node.attr[key], src, dst)
    for fn in gdef.library.function:
        for arg in list(fn.signature.input_arg) + list(fn.signature.output_arg):
            if arg.type == src:
                arg.type = dst
    return recovered


# -- graph walking ----------------------------------------------------------------------------

def _ancestors(roots, *, control: bool = True) -> set:
    """Every op ``roots`` (ops) depend on, through inputs (and control inputs)."""
    seen, todo = set(), deque(roots)
    while todo:
        op = todo.popleft()
        if op in seen:
            continue
        seen.add(op)
        todo.extend(t.op for t in op.inputs)
        if control:
            todo.extend(op.control_inputs)
    return seen


def _source_variable(tensor, depth: int = 6):
    """The variable op a tensor reads (through reads, identities and casts), or None."""
    op = tensor.op
    for _ in range(depth):
        if op.type in _VARIABLE_OPS:
            return op
        if op.type in _READS and op.inputs:
            op = op.inputs[0].op
        else:
            return None
    return None


def _as_op(x):
    return x if hasattr(x, "node_def") and not hasattr(x, "op") else getattr(x, "op", x)


def _var_op(v):
    """The VarHandleOp / VariableV2 op of a tf.Variable, a handle tensor or a variable op."""
    op = getattr(v, "op", v)
    if op.type in _VARIABLE_OPS:
        return op
    src = _source_variable(v) if hasattr(v, "op") else None
    if src is None:
        raise ParityError(f"{getattr(v, 'name', v)} is not a variable")
    return src


def _norm_name(op_name: str) -> str:
    """A batch normalisation's output named by its layer scope, whichever kernel computed it."""
    return re.split(r"/(cond|FusedBatchNorm\w*|batchnorm)(/|$)", op_name)[0]


def _is_tensor(x) -> bool:
    return hasattr(x, "op") and hasattr(x, "dtype") and hasattr(x, "graph")


# -- the captured program ---------------------------------------------------------------------

class TF1Program:
    """A user's TF1 program, captured (see the module docstring). Use :func:`capture`."""

    framework = "tf1"

    def __init__(self, program: Mapping[str, Any], graph, dtype: str, notes: list[str], written: str,
                 where: str = "tf1 program"):
        self.where = where
        tf = _tf()
        tf1 = tf.compat.v1
        self.dtype, self._notes, self.written = dtype, list(notes), written
        self.data = program.get("data")
        self._analyse(program, graph)
        gdef = graph.as_graph_def()
        if dtype != written:
            recovered = _retype_graph_def(gdef, dtype)
            if recovered:
                self._notes.append(
                    f"{dtype}: {len(recovered)} float32 scalar constant(s) of the program (Python floats TF1 "
                    f"turns into float32, e.g. optimizer hyper-parameters) taken as the decimals they print as (or their reciprocals): "
                    + "; ".join(sorted(set(recovered))[:8]) + ("; ..." if len(set(recovered)) > 8 else "")
                    + ". A constant that is neither a short decimal nor the reciprocal of one (0.1/3) would differ from a float64 port by ~3e-8 "
                    "relative: pass it as tf.constant(value, tf.float64) in a float64 program."
                )
        elif dtype == "float64":
            self._note_float32_constants(graph)
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf1.import_graph_def(gdef, name="")
            self._bind(tf, tf1)
            self.graph.finalize()
        config = program.get("session_config")
        if config is None:
            config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self.session = tf1.Session(graph=self.graph, config=config)
        self.session.run([self.graph.get_operation_by_name(n) for n in self._initializers])
        self._rates = self._resolve_rates()
        self._last_shapes: dict[int, tuple] = {}

    # -- analysis on the graph the program built ---------------------------------------------
    def _analyse(self, program: Mapping[str, Any], graph) -> None:
        tf = _tf()
        tf1 = tf.compat.v1
        unknown = sorted(set(program) - set(PROGRAM_KEYS))
        if unknown:
            raise ParityError(f"{self.where}: unknown key {unknown[0]!r}; expected some of {', '.join(PROGRAM_KEYS)}")
        inputs = program.get("inputs")
        if not isinstance(inputs, Mapping) or not inputs:
            raise ParityError(f"{self.where}: 'inputs' must be a dict {{batch key: placeholder}}")
        for key, ph in inputs.items():
            if not _is_tensor(ph) or not ph.op.type.startswith("Placeholder"):
                raise ParityError(f"{self.where}: inputs[{key!r}] is not a placeholder ({type(ph).__name__})")
        loss = program.get("loss")
        if not _is_tensor(loss):
            raise ParityError(f"{self.where}: 'loss' must be a tensor, not {type(loss).__name__}")
        optimizer = program.get("optimizer")
        if optimizer is not None and not callable(getattr(optimizer, "apply_gradients", None)):
            raise ParityError(f"{self.where}: 'optimizer' has no apply_gradients ({type(optimizer).__name__})")
        gvs = program.get("grads_and_vars")
        train_op = program.get("train_op")
        if train_op is None:
            if optimizer is None or gvs is None:
                raise ParityError(f"{self.where}: give 'train_op', or 'optimizer' with the 'grads_and_vars' it applies")
            with graph.as_default():
                train_op = optimizer.apply_gradients(gvs)
            self._notes.append("no train_op given: the adapter called optimizer.apply_gradients(grads_and_vars)")
        train_op = _as_op(train_op)
        self.input_keys = list(inputs)
        self._inputs = {k: ph.name for k, ph in inputs.items()}
        self._input_dtypes = {k: ph.dtype.base_dtype.name for k, ph in inputs.items()}
        self._loss = loss.name
        self._train = train_op.name
        feeds = dict(program.get("feeds") or {})
        for t in feeds:
            if not _is_tensor(t):
                raise ParityError(f"{self.where}: 'feeds' keys must be tensors, not {type(t).__name__}")
        self._feeds = {t.name: v for t, v in feeds.items()}
        train_deps = _ancestors([train_op])

        # update ops: run with the train op unless it already depends on them
        explicit = program.get("update_ops")
        found = graph.get_collection(tf1.GraphKeys.UPDATE_OPS)
        update_ops = [_as_op(o) for o in (explicit if explicit is not None else found)]
        missing = [o for o in update_ops if o not in train_deps]
        self._extra = [o.name for o in missing]
        if missing and explicit is None:
            self._notes.append(
                f"{len(missing)} UPDATE_OPS op(s) are not dependencies of the train op: run with it, as "
                "sess.run([train_op, update_ops]) does (pass 'update_ops': [] if the program never runs them)"
            )

        # the optimizer's apply ops: processed gradients, learning rate, slots
        variables = [op for op in graph.get_operations() if op.type in _VARIABLE_OPS]
        self._var_names = {op: op.name for op in variables}
        applies = [op for op in graph.get_operations()
                   if op in train_deps and re.match(r"^(Resource)?(Sparse)?Apply", op.type)]
        trained: dict = {}  # var op -> apply op
        for op in applies:
            var = _var_op(op.inputs[0])
            trained[var] = op
        if not applies:
            raise ParityError(
                f"{self.where}: the train op runs no optimizer apply op (ResourceApply*): nothing to train, "
                "or a hand-written update parity cannot read; give an optimizer's train op"
            )
        self._applied = trained
        names = [self._var_names[v] for v in trained]
        args = {v: [a.name for a in op.op_def.input_arg] for v, op in trained.items()}

        def arg(v, *options):
            for o in options:
                if o in args[v]:
                    return trained[v].inputs[args[v].index(o)]
            return None

        self._processed = {self._var_names[v]: arg(v, "grad", "delta").name for v in trained}
        first = next(iter(trained))
        self._apply_type = re.sub(r"^(Resource)?(Sparse)?Apply", "", trained[first].type)
        lr = arg(first, "lr", "alpha")
        self._lr = lr.name if lr is not None else None
        self._hyper = {}
        for a in ("beta1", "beta2", "epsilon", "momentum", "rho", "l1", "l2", "lr_power", "decay"):
            t = arg(first, a)
            if t is not None:
                self._hyper[a] = t.name
        if "use_nesterov" in trained[first].node_def.attr:
            self._nesterov = bool(trained[first].get_attr("use_nesterov"))
        else:
            self._nesterov = None

        # raw gradients: the gradients/... tensor each applied gradient derives from
        self._raw = {}
        for v, op in trained.items():
            processed = arg(v, "grad", "delta")
            raw = self._raw_gradient(processed, v)
            if raw is None:
                with graph.as_default():
                    raw = tf.gradients(loss, [v.outputs[0]])[0]
                self._notes.append(f"raw gradient of {self._var_names[v]}: not found upstream of the applied "
                                   "one; computed by the adapter with tf.gradients(loss, var)")
            self._raw[self._var_names[v]] = raw.name

        # slots and the optimizer's other variables
        owned: dict = {}
        self._slots: dict[str, str] = {}
        if optimizer is not None and callable(getattr(optimizer, "get_slot_names", None)):
            by_op = {}
            for v in trained:
                by_op[v] = v
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
                        self._slots[f"{self._var_names[v]}/{SLOT_NAMES.get(slot, slot)}"] = sop.name
        for v, op in trained.items():
            for i, a in enumerate(args[v]):
                src = _source_variable(op.inputs[i])
                if i == 0 or src is None or src in owned:
                    continue
                owned[src] = True
                if a.endswith("_power") or src not in trained:
                    slot = "momentum" if a == "accum" and "Momentum" in op.type else SLOT_NAMES.get(a, a)
                    key = self._var_names[src] if a.endswith("_power") else f"{self._var_names[v]}/{slot}"
                    self._slots.setdefault(key, src.name)
        if optimizer is not None:
            for pv in getattr(optimizer, "_non_slot_variables", lambda: [])():
                sop = _var_op(pv)
                owned[sop] = True
                self._slots.setdefault(self._var_names[sop].split("/")[-1], sop.name)

        # state: every other variable; constrained: what the post ops assign
        self._state = {self._var_names[v]: v.name for v in variables if v not in trained and v not in owned}
        post = [_as_op(o) for o in (program.get("post_ops") or [])]
        self._post = [o.name for o in post]
        self._constrained = {}
        for op in _ancestors(post, control=True) if post else ():
            if op.type in _ASSIGNS and op.inputs:
                src = _source_variable(op.inputs[0]) or (op.inputs[0].op if op.inputs[0].op.type in _VARIABLE_OPS else None)
                if src is not None:
                    self._constrained[self._var_names[src]] = src.name
        # constrained: the variables the post ops write (as the torch adapter reports the ones its constraint writes)
        self._constrained = {n: self._constrained[n] for n in self._var_names.values() if n in self._constrained}

        # model state loaded like the weights: non-trained float variables the forward pass reads
        # or the update ops assign (BatchNorm moving statistics)
        forward = self._forward_ops(graph, inputs.values(), loss)
        assigned = set()
        for op in _ancestors(update_ops) if update_ops else ():
            if op.type in _ASSIGNS and op.inputs:
                src = _source_variable(op.inputs[0]) or op.inputs[0].op
                assigned.add(src)
        read = {_source_variable(t) for op in forward for t in op.inputs}
        model_state = [v for v in variables if v not in trained and v not in owned and (v in read or v in assigned)
                       and self._dtype_of(v) in _FLOAT]
        self._specs_vars = [v for v in variables if v in trained or v in model_state]
        self._kinds = {v: self._param_kind(v, forward) for v in self._specs_vars}
        self._trainable = {v: v in trained for v in self._specs_vars}
        self._shapes = {v: tuple(int(d) for d in self._shape_of(v)) for v in self._specs_vars}

        # forward activations and dropout sites
        self._dropout = self._find_dropout(forward)
        for site in self._dropout:
            if site["scale"] is None:
                self._notes.append(f"dropout {site['name']}: its random tensor feeds no x/keep_prob select parity "
                                   "knows: left to TF's own draw (compare that layer statistically)")
        self._forward, self._forward_kind = self._layer_outputs(forward, trained, model_state)

        # initialisers of every variable
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
        self._initializers = inits
        self._settings = self._read_settings(optimizer)

    @staticmethod
    def _dtype_of(v) -> str:
        return v.get_attr("dtype").name

    @staticmethod
    def _shape_of(v):
        return _tf().TensorShape(v.get_attr("shape")).as_list()

    def _raw_gradient(self, tensor, var):
        """The nearest ``gradients/...`` tensor upstream of ``tensor`` with the variable's shape."""
        shape = tuple(self._shape_of(var))
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

    @staticmethod
    def _forward_ops(graph, inputs, loss) -> list:
        """Ops downstream of an input placeholder and upstream of the loss, in creation order."""
        up = _ancestors([loss.op], control=False)
        down, todo = set(), deque(ph.op for ph in inputs)
        while todo:
            op = todo.popleft()
            if op in down or op not in up:
                continue
            down.add(op)
            for out in op.outputs:
                todo.extend(out.consumers())
        return [op for op in graph.get_operations() if op in down]

    def _param_kind(self, v, forward) -> str:
        name = self._var_names[v]
        leaf = name.split("/")[-1]
        for key, kind in (("moving_mean", "bn_mean"), ("moving_variance", "bn_var"), ("gamma", "bn_gamma"),
                          ("beta", "bn_beta")):
            if leaf.startswith(key):
                return kind
        fwd = set(forward)
        for op in self.graph_ops_reading(v):
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
                if t in _BIAS_ADDS and len(self._shapes_or(v)) == 1:
                    return "bias"
        return "other"

    def _shapes_or(self, v):
        return self._shape_of(v)

    @staticmethod
    def graph_ops_reading(v):
        """The read ops (and casts of them) of a variable op."""
        out, todo = [], deque([v])
        while todo:
            op = todo.popleft()
            for c in op.outputs[0].consumers() if op.outputs else ():
                if c.type in _READS:
                    out.append(c)
                    todo.append(c)
        return out

    def _find_dropout(self, forward) -> list[dict]:
        """Dropout sites: ``GreaterEqual(random_uniform, rate)`` whose random tensor we can feed."""
        sites = []
        for op in forward:
            if op.type != "GreaterEqual":
                continue
            rnd = op.inputs[0]
            src = rnd.op
            for _ in range(4):
                if src.type in ("RandomUniform", "StatelessRandomUniformV2"):
                    break
                src = src.inputs[0].op if src.inputs else src
            if src.type not in ("RandomUniform", "StatelessRandomUniformV2"):
                continue
            out = [c for c in op.outputs[0].consumers() if c.type in ("SelectV2", "Select", "Cast")]
            scope = op.name.rsplit("/", 1)[0] if "/" in op.name else op.name
            shape = tuple(rnd.shape.as_list()) if rnd.shape.rank is not None else None
            scale = None
            if out and out[0].type in ("SelectV2", "Select") and out[0].inputs[1].op.type in ("RealDiv", "Mul"):
                scale = out[0].inputs[1].op.inputs[1].name  # x / keep_prob or x * (1 / keep_prob)
            sites.append({"random": rnd.name, "rate": op.inputs[1].name, "name": scope, "scale": scale,
                          "output": out[0].name if out else None, "shape": shape})
        return sites

    def _layer_outputs(self, forward, trained, model_state):
        """The layer outputs (see the module docstring), in creation order."""
        kinds = {t: k for k, types in LAYER_OPS.items() for t in types}
        fwd = set(forward)
        params = set(trained) | set(model_state)
        outputs, kind_of = {}, {}
        dropout_out = {s["output"]: s["name"] for s in self._dropout if s["output"]}
        for op in forward:
            kind = kinds.get(op.type)
            if op._get_control_flow_context() is not None:
                continue  # inside a tf.cond branch: the branch not taken has no value; its Merge is the output
            if op.type == "Merge":
                branch = {kinds.get(i.op.type) for i in op.inputs} - {None}
                if len(branch) == 1:
                    kind = branch.pop()
                    key = _norm_name(op.name) if kind == "norm" else op.name
                    outputs[key] = op.outputs[0].name
                    kind_of[key] = kind
                continue
            if op.type in ("GatherV2", "ResourceGather"):
                if _source_variable(op.inputs[0]) not in params:
                    continue
            name = op.outputs[0].name if op.outputs else None
            if op.name in dropout_out:
                outputs[dropout_out[op.name]] = name
                kind_of[dropout_out[op.name]] = "dropout"
                continue
            if kind is None:
                if op.name.endswith("batchnorm/add_1") and op.type in _BIAS_ADDS:
                    outputs[_norm_name(op.name)] = name
                    kind_of[_norm_name(op.name)] = "norm"
                continue
            if kind == "norm":  # one name for the fused (float32) and non-fused (float64) kernels
                outputs[_norm_name(op.name)] = name
                kind_of[_norm_name(op.name)] = kind
                continue
            if kind in ("linear", "conv"):
                # the bias add that directly follows a matmul / conv is the layer's output
                cons = [c for c in op.outputs[0].consumers() if c in fwd]
                if len(cons) == 1 and cons[0].type in _BIAS_ADDS:
                    other = [t for t in cons[0].inputs if t is not op.outputs[0]]
                    if other and _source_variable(other[0]) in params:
                        op = cons[0]
                        name = op.outputs[0].name
            outputs[op.name] = name
            kind_of[op.name] = kind
        return outputs, kind_of

    def _note_float32_constants(self, graph) -> None:
        """Program written in float64: list its float32 constants cast to float64 (TF1 optimizers)."""
        found = []
        for op in graph.get_operations():
            if op.type == "Cast" and op.get_attr("SrcT").name == "float32" and op.get_attr("DstT").name == "float64":
                src = op.inputs[0].op
                if src.type == "Const" and src.outputs[0].shape.rank == 0:
                    value = float(_tf().make_ndarray(src.get_attr("value")))
                    if _shortest(value) != value:
                        found.append(f"{src.name} = float32({_shortest(value)!r}) = {value!r}")
        if found:
            self._notes.append(
                "float64 as written: the program's optimizer turns Python floats into float32 constants cast to "
                "float64 (" + "; ".join(sorted(set(found))[:6]) + "): the run trains with float32-rounded hyper-parameters "
                "(~3e-8 relative). Fix: pass them as tf.constant(value, tf.float64)."
            )

    def _read_settings(self, optimizer) -> dict:
        out: dict = {}
        if optimizer is not None:
            out["optimizer"] = f"{type(optimizer).__module__.split('.')[0]}:{type(optimizer).__name__}"
            for attr, key in (("_lr", "lr"), ("_learning_rate", "lr"), ("_beta1", "beta1"), ("_beta2", "beta2"),
                              ("_epsilon", "eps"), ("_momentum", "momentum"), ("_use_nesterov", "nesterov"),
                              ("_decay", "decay"), ("_initial_accumulator_value", "initial_accumulator_value"),
                              ("_centered", "centered")):
                v = getattr(optimizer, attr, None)
                if isinstance(v, (bool, int, float, np.floating)) and key not in out:
                    out[key] = v if isinstance(v, bool) else float(v)
        return out

    # -- the graph that runs ---------------------------------------------------------------------
    def _bind(self, tf, tf1) -> None:
        g = self.graph
        T = g.get_tensor_by_name
        self._reads, self._loads, self._load_ops = {}, {}, {}
        everything = set(self._var_names.values())
        for name in everything:
            op = g.get_operation_by_name(name)
            dt = op.get_attr("dtype")
            if op.type == "VarHandleOp":
                read = tf.raw_ops.ReadVariableOp(resource=op.outputs[0], dtype=dt, name=f"parity/read/{name}")
            else:
                read = tf.identity(op.outputs[0], name=f"parity/read/{name}")
            self._reads[name] = read
        for v in self._specs_vars:
            name = self._var_names[v]
            op = g.get_operation_by_name(name)
            dt = op.get_attr("dtype")
            ph = tf1.placeholder(dt, op.get_attr("shape"), name=f"parity/load/{name}")
            if op.type == "VarHandleOp":
                assign = tf.raw_ops.AssignVariableOp(resource=op.outputs[0], value=ph, name=f"parity/assign/{name}")
            else:
                assign = tf1.assign(op.outputs[0], ph, name=f"parity/assign/{name}")
            self._loads[name] = ph
            self._load_ops[name] = assign
        self._t_inputs = {k: T(n) for k, n in self._inputs.items()}
        self._t_feeds = {T(n): v for n, v in self._feeds.items()}
        before = {
            "forward": {k: T(n) for k, n in self._forward.items()},
            "loss": {"loss": T(self._loss)},
            "gradients": {k: T(n) for k, n in self._raw.items()},
            "processed_gradients": {k: T(n) for k, n in self._processed.items()},
        }
        if self._lr is not None:
            before["learning_rate"] = {"lr": T(self._lr)}
        self._before = {s: d for s, d in before.items() if d}
        self._train_ops = [g.get_operation_by_name(self._train)] + [g.get_operation_by_name(n) for n in self._extra]
        after = {
            "parameters": {self._var_names[v]: self._reads[self._var_names[v]] for v in self._applied},
            "slots": {k: self._reads[n] for k, n in self._slots.items()},
            "state": {k: self._reads[n] for k, n in self._state.items()},
        }
        self._after = {s: d for s, d in after.items() if d}
        self._post_ops = [g.get_operation_by_name(n) for n in self._post]
        self._t_constrained = {k: self._reads[n] for k, n in self._constrained.items()}
        self._t_random = [T(s["random"]) for s in self._dropout]
        self._t_rate = [T(s["rate"]) for s in self._dropout]
        self._t_scale = [T(s["scale"]) if s["scale"] else None for s in self._dropout]
        self._t_random_shape = [tf.shape(t, name=f"parity/dropout_shape_{i}") for i, t in enumerate(self._t_random)]
        self._t_hyper = {k: T(n) for k, n in self._hyper.items()}

    def _resolve_rates(self) -> list:
        rates = []
        for t in self._t_rate:
            try:
                rates.append(float(self.session.run(t, self._t_feeds)))
            except Exception:  # a rate that depends on the batch: read at the first step
                rates.append(None)
        hyper = dict(self._t_hyper)
        if self._lr is not None:
            hyper["lr"] = self.graph.get_tensor_by_name(self._lr)
        for k, t in hyper.items():
            try:
                v = float(self.session.run(t, self._t_feeds))
            except Exception:  # a rate that depends on the batch (none known): not a setting
                continue
            self._settings.setdefault({"epsilon": "eps"}.get(k, k), _shortest(v) if self.dtype == "float32" else v)
        self._settings.setdefault("optimizer", self._apply_type)
        if self._nesterov is not None:
            self._settings.setdefault("nesterov", self._nesterov)
        return rates

    # -- the protocol ----------------------------------------------------------------------------
    def parameter_specs(self) -> list:
        ParamSpec, _ = _records()
        out = []
        for v in self._specs_vars:
            name = self._var_names[v]
            layer = name.rsplit("/", 1)[0] + "/" if "/" in name else name
            out.append(ParamSpec(name, self._shapes[v], self._kinds[v], layer, self._trainable[v]))
        return out

    def parameters(self) -> dict[str, np.ndarray]:
        return self.session.run({self._var_names[v]: self._reads[self._var_names[v]] for v in self._specs_vars})

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        unknown = sorted(set(params) - set(self._loads))
        if unknown:
            raise ParityError(f"{self.where}: no parameter {unknown[0]!r} to load")
        feed, ops = {}, []
        for name, value in params.items():
            ph = self._loads[name]
            value = np.asarray(value, dtype=ph.dtype.as_numpy_dtype)
            if tuple(value.shape) != tuple(ph.shape.as_list()):
                raise ParityError(f"{self.where}: {name} has shape {tuple(ph.shape.as_list())}, "
                                  f"the value to load {tuple(value.shape)}")
            feed[ph] = value
            ops.append(self._load_ops[name])
        if ops:
            self.session.run(ops, feed)

    def _feed(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None) -> dict:
        feed = dict(self._t_feeds)
        for key, ph in self._t_inputs.items():
            if key not in batch:
                raise ParityError(f"{self.where}: the batch has no {key!r} (its keys: {', '.join(sorted(batch))})")
            value = np.asarray(batch[key])
            if value.dtype.kind == "f" and ph.dtype.is_floating:
                value = value.astype(ph.dtype.as_numpy_dtype)
            feed[ph] = value
        masks = masks or {}
        for i, t in enumerate(self._t_random):
            if i in masks:
                feed[t] = np.asarray(masks[i], dtype=t.dtype.as_numpy_dtype)
            elif self._t_scale[i] is not None:
                # no mask: the identity (keep everything, no 1/keep_prob scaling)
                shape = self._last_shapes.get(i)
                if shape is None:
                    shape = self.session.run(self._t_random_shape[i], feed)
                feed[t] = np.ones(shape, dtype=t.dtype.as_numpy_dtype)
                scale = self._t_scale[i]
                feed[scale] = np.ones(scale.shape.as_list() if scale.shape.rank else (), scale.dtype.as_numpy_dtype)
        return feed

    def step(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None = None) -> dict:
        feed = self._feed(batch, masks)
        run = self.session.run
        fetches = {"before": self._before, "train": self._train_ops}
        if self._t_random:
            fetches["shapes"] = self._t_random_shape
            fetches["rates"] = self._t_rate
        # One run fetches the stages before the update and runs the train op, as a TF1 script's
        # sess.run([train_op, loss, ...]) does: the fetched gradients are the ones applied.
        got = run(fetches, feed)
        out = {s: dict(d) for s, d in got["before"].items()}
        if self._t_random:
            self._last_shapes = {i: tuple(int(d) for d in s) for i, s in enumerate(got["shapes"])}
            self._rates = [float(r) for r in got["rates"]]
        if self._after:
            out.update(run(self._after))
        if self._post_ops:
            run(self._post_ops, feed)
            out["constrained"] = run(self._t_constrained)
        return out

    def forward(self, batch: Mapping[str, np.ndarray], masks: Mapping[int, np.ndarray] | None = None) -> dict:
        """One training-mode forward pass: the layer outputs; no train op, no update op runs."""
        feed = self._feed(batch, masks)
        fetches = {"forward": self._before.get("forward", {})}
        if self._t_random:
            fetches["shapes"], fetches["rates"] = self._t_random_shape, self._t_rate
        got = self.session.run(fetches, feed)
        if self._t_random:
            self._last_shapes = {i: tuple(int(d) for d in s) for i, s in enumerate(got["shapes"])}
            self._rates = [float(r) for r in got["rates"]]
        return got["forward"]

    def dropout_sites(self) -> list:
        """The dropout sites the adapter drives (shapes as seen by the last forward or step)."""
        _, DropoutSite = _records()
        out = []
        for i, s in enumerate(self._dropout):
            if self._t_scale[i] is None:
                continue
            shape = self._last_shapes.get(i, s["shape"])
            if shape is None or any(d is None for d in shape):
                raise ParityError(f"{self.where}: dropout {s['name']} has no static shape: call forward() first")
            out.append(DropoutSite(i, s["name"], tuple(shape), self._rates[i]))
        return out

    def input_specs(self) -> dict:
        """Batch key -> (shape with None for unknown dims, dtype): what the program's placeholders take."""
        return {k: (tuple(self._t_inputs[k].shape.as_list()) if self._t_inputs[k].shape.rank is not None else None,
                    self._t_inputs[k].dtype.base_dtype.name) for k in self.input_keys}

    def data_source(self):
        """The program's own "data" (a function returning batches), or None."""
        return self.data

    @property
    def has_constraint(self) -> bool:
        return bool(self._post)

    def forward_kinds(self) -> dict[str, str]:
        """Each forward output's kind: linear, conv, activation, pool, norm, dropout, embedding."""
        return dict(self._forward_kind)

    def settings(self) -> dict:
        return dict(self._settings)

    def notes(self) -> list[str]:
        return list(self._notes)

    def close(self) -> None:
        self.session.close()


def capture(program, *, dtype: str, where: str = "tf1 program") -> TF1Program:
    """Build a user's TF1 program and capture it for a run in ``dtype``.

    Args:
        program: the user's ``parity_program`` function (or a module that has one). It is
            called with a fresh ``tf.Graph`` as the default graph; for a run in another
            dtype than the program's own it is called once more under a dtype override.
        dtype: "float64" or "float32".

    Raises:
        ParityError: a key of the wrong kind, nothing to train, a graph that cannot run in ``dtype``.
    """
    if dtype not in ("float64", "float32"):
        raise ParityError(f"dtype must be float64 or float32, not {dtype!r}")
    fn = getattr(program, "parity_program", program)
    if not callable(fn):
        raise ParityError(f"{where}: tf1 capture needs the parity_program function (it builds the graph in a fresh tf.Graph)")
    tf = _tf()
    graph = tf.Graph()
    notes: list[str] = []
    built = _call_program(fn, graph, None)
    if not isinstance(built, Mapping):
        raise ParityError(f"{where}: parity_program() must return a dict, not {type(built).__name__}")
    written = _written_dtype(built)
    if written != dtype:
        graph2 = tf.Graph()
        _BN_TOUCHED.clear()
        try:
            built2 = _call_program(fn, graph2, dtype)
            if _written_dtype(built2) == dtype:
                graph, built = graph2, built2
                notes.append(f"{dtype}: the program (written in {written}) was built with its placeholders and "
                             f"variables made {dtype}; the rest of its float32 graph rewritten to {dtype}")
                if _BN_TOUCHED:
                    notes.append(f"{dtype}: batch normalisation {', '.join(_BN_TOUCHED)} has no float64 fused kernel and "
                                 "runs non-fused, whose moving variance update uses the biased batch variance; parity "
                                 "scales it by n/(n-1), the fused kernel's (float32) convention")
            else:
                notes.append(f"{dtype}: the program's graph (written in {written}) rewritten to {dtype}")
        except ParityError:
            raise
        except Exception as exc:  # an explicit float32 somewhere: fall back to rewriting the as-written graph
            line = (str(exc).strip().splitlines() or [""])[0][:160]
            notes.append(f"{dtype}: building the program with {dtype} placeholders and variables failed "
                         f"({type(exc).__name__}: {line}); its as-written graph was rewritten to {dtype} instead")
    return TF1Program(built, graph, dtype, notes, written, where)


def _written_dtype(built: Mapping[str, Any]) -> str:
    """The float dtype the program's inputs (or loss) are written in."""
    for ph in (built.get("inputs") or {}).values():
        if _is_tensor(ph) and ph.dtype.base_dtype.name in _FLOAT:
            return ph.dtype.base_dtype.name
    loss = built.get("loss")
    if _is_tensor(loss) and loss.dtype.base_dtype.name in _FLOAT:
        return loss.dtype.base_dtype.name
    return "float32"
