"""Walking a TF1 graph: the op-type tables and traversal helpers every part of the adapter uses
(which ops read, hold or assign a variable; from a tensor to the variable it reads; from ops to
everything they depend on). A module of its own, as none of the concept modules fits: the
analysis, the forward outputs, the optimizer and the dropout readers all walk the graph the same
way, and with these helpers below them each can import them without an import cycle.
"""

from __future__ import annotations

from collections import deque

from parity.errors import ParityError

_READS = ("ReadVariableOp", "Identity", "Cast", "Enter", "Switch")
_VARIABLE_OPS = ("VarHandleOp", "VariableV2", "Variable")
_ASSIGNS = ("AssignVariableOp", "Assign", "AssignSubVariableOp", "AssignAddVariableOp", "AssignSub", "AssignAdd")
_FLOAT = {"float32", "float64"}


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


def _is_tensor(x) -> bool:
    return hasattr(x, "op") and hasattr(x, "dtype") and hasattr(x, "graph")


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
