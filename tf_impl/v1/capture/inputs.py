"""The inputs of a TF1 program as parity feeds them: ``tf.sparse_placeholder`` inputs fed from a dense batch
(:func:`sparse_inputs`), variables given in ``feeds`` assigned before every run (:func:`variable_feeds`), and the
range an integer input is drawn from (:func:`lookup_bounds`: the embedding table or the classes it indexes).
"""

from __future__ import annotations

from typing import Any, Mapping

from .graph import _VARIABLE_OPS

__all__ = ["sparse_inputs", "variable_feeds", "lookup_bounds"]


def sparse_inputs(program: Mapping[str, Any]) -> tuple:
    """The program with each ``tf.sparse_placeholder`` input replaced by its values placeholder (what the
    analysis follows to the loss), and key -> ((indices, values, dense_shape) tensor names, (dense shape,
    dtype)): parity feeds the three from the dense batch (:meth:`TF1Program._feed`)."""
    inputs = program.get("inputs")
    if not isinstance(inputs, Mapping):
        return program, {}
    sparse = {k: v for k, v in inputs.items() if type(v).__name__ == "SparseTensor"}
    if not sparse:
        return program, {}
    names = {k: ((v.indices.name, v.values.name, v.dense_shape.name),
                 (tuple(v.shape.as_list()) if v.shape.rank is not None else None, v.values.dtype.base_dtype.name))
             for k, v in sparse.items()}
    program = dict(program)
    program["inputs"] = {k: v.values if k in sparse else v for k, v in inputs.items()}
    return program, names


def variable_feeds(program: Mapping[str, Any]) -> tuple:
    """The program with the variables taken out of its ``feeds`` (``{m.lr: 1.0}``: a resource variable's
    handle cannot be fed), and variable op name -> value: parity assigns it before every run instead."""
    feeds = program.get("feeds")
    if not isinstance(feeds, Mapping):
        return program, {}
    fed = [(k, v) for k, v in feeds.items() if getattr(getattr(k, "op", None), "type", None) in _VARIABLE_OPS]
    if not fed:
        return program, {}
    program = dict(program)
    program["feeds"] = {k: v for k, v in feeds.items() if all(k is not f for f, _ in fed)}
    return program, {k.op.name: v for k, v in fed}


_THROUGH = {"Identity", "Cast", "Reshape", "ExpandDims", "Squeeze", "Transpose", "StridedSlice", "Slice",
            "Unpack", "Split", "SplitV", "Pack", "ConcatV2", "ReverseV2", "Tile"}


def lookup_bounds(inputs: Mapping[str, Any]) -> dict:
    """Integer input key -> the first dimension of the table (a ``[V, D]`` variable or tensor) the ids index
    in the Gather / ResourceGather they reach (through reshapes, casts, slices), or the classes of the sparse
    softmax cross-entropy they are the labels of (where static); None where a table's size is not static."""
    out = {}
    for key, ph in inputs.items():
        if not getattr(ph.dtype, "is_integer", False):
            continue
        bounds, seen, todo = [], set(), [ph]
        while todo:
            t = todo.pop()
            if t.name in seen:
                continue
            seen.add(t.name)
            for op in t.consumers():
                names = [i.name for i in op.inputs]
                if op.type in ("Gather", "GatherV2", "ResourceGather") and names[1:2] == [t.name]:
                    table = op.inputs[0]
                    while table.op.type == "Identity":
                        table = table.op.inputs[0]
                    if op.type == "ResourceGather" and table.op.type == "VarHandleOp":
                        dims = table.op.get_attr("shape").dim
                        bounds.append(int(dims[0].size) if dims and dims[0].size >= 0 else None)
                    else:
                        dims = table.shape.as_list() if table.shape.rank else None
                        bounds.append(dims[0] if dims else None)
                elif op.type == "SparseSoftmaxCrossEntropyWithLogits" and names[1:2] == [t.name]:  # labels < classes
                    width = op.inputs[0].shape.as_list()[-1] if op.inputs[0].shape.rank else None
                    bounds += [width] if width else []  # not static: the classes of the probe's last output
                elif op.type in _THROUGH and (names[:1] == [t.name] or op.type in ("Pack", "ConcatV2")):
                    todo.extend(op.outputs)
        if bounds:
            out[key] = None if None in bounds else min(bounds)
    return out
