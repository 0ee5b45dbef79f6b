"""The forward outputs a TF1 capture records: the layer ops (:data:`LAYER_OPS`) on the path from
the input placeholders to the loss, in graph (creation) order, named by op name (so by name scope):
a matmul/conv with the bias add that follows it, activations, pooling, batch normalisation (one
name for the fused and non-fused kernels), dropout, embedding lookups; each with its kind.
"""

from __future__ import annotations

import re
from collections import deque

from .graph import _ancestors, _source_variable

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
