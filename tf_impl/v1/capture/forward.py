"""The forward outputs a TF1 capture records: the layer ops (:data:`LAYER_OPS`) on the path from
the input placeholders to the loss, in graph (creation) order, named by op name (so by name scope):
a matmul/conv with the bias add that follows it, activations, pooling, batch normalisation (one
name for the fused and non-fused kernels), dropout, embedding lookups, the sequence output of a
``dynamic_rnn`` (a ``While`` op: its stacked, batch-major output, named by the RNN's scope) and its
final state (``scope/h``, ``scope/c``, ``.1``... for each further layer: an LSTM's state is (c, h)
per layer); each with its kind (``rnn``, ``rnn_state`` for h, ``rnn_cell`` for an LSTM's c). A
``static_rnn`` (the cell unrolled in the graph) records its cells' final states the same way (not its
sequence output, a Python list), and none of the ops inside its cells. A ``bidirectional_dynamic_rnn``'s two
sequence outputs are recorded as one, ``scope`` (:func:`bidirectional_outputs`): the forward one and the
backward one in input time order (as TF returns it), concatenated on the last axis, as torch's
``nn.LSTM(bidirectional=True)`` gives its sequence output.
"""

from __future__ import annotations

import re
from collections import deque

from .graph import _ancestors, _source_variable

#: Op types whose output is a layer output, by kind (see the module docstring).
LAYER_OPS = {
    "linear": ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "SparseTensorDenseMatMul"),
    "conv": ("Conv2D", "Conv3D", "DepthwiseConv2dNative", "Conv2DBackpropInput"),
    "activation": ("Relu", "Relu6", "Elu", "Selu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "Softplus",
                   "Softsign"),
    "pool": ("MaxPool", "MaxPoolV2", "AvgPool", "MaxPool3D", "AvgPool3D"),
    "norm": ("FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"),
    "embedding": ("GatherV2", "ResourceGather"),
}
_BIAS_ADDS = ("BiasAdd", "Add", "AddV2")
_WHILE_OPS = ("While", "StatelessWhile")


def _rnn_outputs_v1(op) -> dict:
    """A ``dynamic_rnn`` in TF1 control flow: its ``TensorArrayStack`` (``op``) and the loop's ``Exit``
    ops, as :func:`_rnn_outputs`."""
    if "/TensorArrayStack/" not in op.name:
        return {}
    scope = op.name.split("/TensorArrayStack/")[0]
    out = {}
    trans = [t for t in op.outputs[0].consumers() if t.type == "Transpose"]
    if trans:
        out[scope] = (trans[0].outputs[0].name, "rnn")
    g = op.graph
    exits = sorted((o for o in g.get_operations() if o.type == "Exit" and o.name.startswith(f"{scope}/while/Exit_")),
                   key=lambda o: int(o.name.rsplit("_", 1)[1]))
    state = [o for o in exits if o.outputs[0].dtype.is_floating and o.outputs[0].shape.rank == 2]

    def source(o):  # the loop variable's initial value (the zero state, or the user's initial state)
        try:
            return g.get_operation_by_name(o.name.replace("/Exit_", "/Enter_")).inputs[0].name
        except (KeyError, IndexError):
            return ""

    def lstm_inside() -> bool:  # the loop's body runs an LSTM cell (a decoder started from an encoder's final
        # state: its initial state is the encoder's, no LSTM zero state)
        prefix = f"{scope}/while/"
        return any(o.name.startswith(prefix) and "lstm_cell/" in o.name for o in g.get_operations())

    lstm = len(state) % 2 == 0 and bool(state) and (all("LSTM" in source(o) for o in state) or lstm_inside())
    for n, o in enumerate(state):
        layer, part = (n // 2, ("c", "h")[n % 2]) if lstm else (n, "h")
        out[f"{scope}/{part}" + (f".{layer}" if layer else "")] = (o.outputs[0].name, "rnn_cell" if part == "c" else "rnn_state")
    return out


def _rnn_outputs(op) -> dict:
    """A ``dynamic_rnn``'s ``While`` op: ``{name: (tensor name, kind)}`` of its batch-major sequence output
    and its final state (the loop variables after the output TensorList, before the step bound)."""
    scope = op.name.rsplit("/while", 1)[0] if "/while" in op.name else op.name
    out = {}
    kinds = [i.op.type for i in op.inputs]
    if "TensorListReserve" not in kinds:
        return out  # a while_loop of the user's own, not an RNN's
    first = kinds.index("TensorListReserve")
    for c in op.outputs[first].consumers():
        if c.type == "Identity":
            stacks = [s for s in c.outputs[0].consumers() if s.type == "TensorListStack"]
            trans = [t for s in stacks for t in s.outputs[0].consumers() if t.type == "Transpose"]
            if trans:
                out[scope] = (trans[0].outputs[0].name, "rnn")
    state = []
    for i in range(first + 1, len(op.inputs)):
        t = op.inputs[i]
        if not t.dtype.is_floating or t.shape.rank != 2:
            break
        state.append(i)
    lstm = len(state) % 2 == 0 and all("LSTM" in op.inputs[i].name for i in state)
    for n, i in enumerate(state):
        layer, part = (n // 2, ("c", "h")[n % 2]) if lstm else (n, "h")
        name = f"{scope}/{part}" + (f".{layer}" if layer else "")
        out[name] = (op.outputs[i].name, "rnn_cell" if part == "c" else "rnn_state")
    return out


_CELL_KERNEL = re.compile(r"^(.*?)/?((?:multi_rnn_cell/cell_\d+/)?(basic_lstm_cell|lstm_cell|basic_rnn_cell|rnn_cell))/kernel$")


def _static_rnn_outputs(forward) -> tuple[dict, set]:
    """A ``static_rnn`` (the cell unrolled in the graph, one ``MatMul`` of the cell's fused kernel per step):
    ``({name: (tensor name, kind)}, cell-internal ops)``: the final state of each cell, from its last step's
    matmul: an LSTM's ``scope/c`` and ``scope/h`` (``h = tanh(c) * sigmoid(o)``), a plain RNN's ``scope/h``
    (its activation), ``.1``... for each further cell of a ``MultiRNNCell``, as ``dynamic_rnn``'s; the ops
    inside the cells are not layer outputs of their own. The sequence output (a Python list) is not recorded."""
    last: dict[str, object] = {}  # cell kernel -> its last step's MatMul
    scopes: dict[str, tuple] = {}
    for op in forward:
        if op.type != "MatMul" or len(op.inputs) < 2:
            continue
        var = _source_variable(op.inputs[1])
        hit = _CELL_KERNEL.match(var.name) if var is not None else None
        if hit:
            last[var.name] = op
            scopes[var.name] = (hit.group(1) or "rnn", hit.group(3), var.name[: -len("/kernel")])
    out, inside = {}, set()
    for n, (kernel, matmul) in enumerate(last.items()):
        scope, cell, prefix = scopes[kernel]
        if _in_loop(matmul):
            return {}, set()  # a dynamic_rnn's cell: its While op is recorded
        inside.update(op for op in forward if op.name.startswith(prefix + "/"))
        bias = [c for c in matmul.outputs[0].consumers() if c.type in _BIAS_ADDS]
        if not bias:
            continue
        suffix = f".{n}" if n else ""
        if "lstm" in cell:
            split = [c for c in bias[0].outputs[0].consumers() if c.type in ("Split", "SplitV")]
            o = [c for c in split[0].outputs[3].consumers() if c.type == "Sigmoid"] if split and len(split[0].outputs) == 4 else []
            h = [c for c in o[0].outputs[0].consumers() if c.type == "Mul"] if o else []
            tanh = [i.op for i in h[0].inputs if i.op.type == "Tanh"] if h else []
            if tanh:
                out[f"{scope}/c{suffix}"] = (tanh[0].inputs[0].name, "rnn_cell")
                out[f"{scope}/h{suffix}"] = (h[0].outputs[0].name, "rnn_state")
        else:
            act = [c for c in bias[0].outputs[0].consumers() if c.type in ("Tanh", "Relu", "Sigmoid")]
            if act:
                out[f"{scope}/h{suffix}"] = (act[0].outputs[0].name, "rnn_state")
    return out, inside


def _in_loop(op) -> bool:
    ctx = op._get_control_flow_context()
    while ctx is not None:
        if ctx.IsWhileContext():
            return True
        ctx = ctx.outer_context
    return False


def _norm_name(op_name: str) -> str:
    """A batch normalisation's output named by its layer scope, whichever kernel computed it."""
    return re.split(r"/(cond|FusedBatchNorm\w*|batchnorm)(/|$)", op_name)[0]


def forward_ops(graph, inputs, loss) -> list:
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


def layer_outputs(forward, trained, model_state, dropout: list[dict]):
    """The layer outputs (see the module docstring), in creation order."""
    kinds = {t: k for k, types in LAYER_OPS.items() for t in types}
    fwd = set(forward)
    params = set(trained) | set(model_state)
    outputs, kind_of = {}, {}
    dropout_out = {s["output"]: s["name"] for s in dropout if s["output"]}
    static, inside = _static_rnn_outputs(forward)
    static_at: dict[str, list] = {}  # the op computing a static_rnn's final state -> its names, recorded there
    for key, (tensor, _) in static.items():
        static_at.setdefault(tensor.rsplit(":", 1)[0], []).append(key)
    for op in forward:
        if op in inside:  # a static_rnn cell's own ops: only its final state is a layer output
            for key in static_at.get(op.name, ()):
                outputs[key], kind_of[key] = static[key]
            continue
        kind = kinds.get(op.type)
        if op.type in _WHILE_OPS or op.type == "TensorArrayGatherV3":
            for key, (tensor, k) in (_rnn_outputs(op) if op.type in _WHILE_OPS else _rnn_outputs_v1(op)).items():
                outputs[key], kind_of[key] = tensor, k
            continue
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
    outputs, kind_of = bidirectional_outputs(outputs, kind_of, forward[0].graph if forward else None)
    return outputs, kind_of


_REVERSES = ("ReverseV2", "ReverseSequence")
#: the note a program with a bidirectional_dynamic_rnn's sequence outputs recorded gets (``{names}``: their scopes)
BIDIRECTIONAL_NOTE = ("{names}: bidirectional_dynamic_rnn's two sequence outputs recorded as one, the forward one "
                      "and the backward one (in input time order, as TF returns it) concatenated on the last axis "
                      "[fw | bw], as torch's bidirectional RNN gives its sequence output")


def bidirectional_outputs(outputs: dict, kind_of: dict, graph) -> tuple[dict, dict]:
    """A ``bidirectional_dynamic_rnn`` (scope ``S``) records its two directions' sequence outputs as ``S/fw/fw``
    and ``S/bw/bw``, the backward one in reversed time (what its loop computed). Here both become one output
    ``S``, at the forward one's place: ``(fw tensor, bw tensor reversed back)``, a pair that the capture
    concatenates on the last axis (:func:`fetch_tensor`), [fw | bw] in input time order, which is torch's
    bidirectional sequence output (batch-major). The final states stay per direction. Where the backward
    output's reversal back (``ReverseV2`` / ``ReverseSequence``, TF's own) is not in the graph, nothing changes."""
    if graph is None:
        return outputs, kind_of
    pairs = {}
    for key, tensor in outputs.items():
        if kind_of.get(key) != "rnn" or not key.endswith("/fw/fw") or not isinstance(tensor, str):
            continue
        base = key[: -len("/fw/fw")]
        bw = outputs.get(f"{base}/bw/bw")
        if not isinstance(bw, str) or kind_of.get(f"{base}/bw/bw") != "rnn" or base in outputs:
            continue
        back = [c for c in graph.get_tensor_by_name(bw).consumers() if c.type in _REVERSES]
        if len(back) == 1:
            pairs[key] = (base, (tensor, back[0].outputs[0].name), f"{base}/bw/bw")
    if not pairs:
        return outputs, kind_of
    drop = {bw for _, _, bw in pairs.values()}
    new_out, new_kind = {}, {}
    for key, tensor in outputs.items():
        if key in drop:
            continue
        if key in pairs:
            base, both, _ = pairs[key]
            new_out[base], new_kind[base] = both, "rnn"
            continue
        new_out[key], new_kind[key] = tensor, kind_of[key]
    return new_out, new_kind


def fetch_tensor(T, tf, name):
    """The tensor to fetch for a recorded output: ``T(name)``, or for a bidirectional RNN's pair (see
    :func:`bidirectional_outputs`) the two concatenated on the last axis (an op parity adds to the graph)."""
    if isinstance(name, tuple):
        fw, bw = (T(n) for n in name)
        scope = fw.op.name.rsplit("/fw/fw/", 1)[0]
        return tf.concat([fw, bw], axis=-1, name=f"parity/bidirectional/{scope}")
    return T(name)


def bidirectional_names(outputs: dict) -> list[str]:
    """The recorded outputs that are a bidirectional RNN's two sequence outputs concatenated."""
    return [k for k, v in outputs.items() if isinstance(v, tuple)]
