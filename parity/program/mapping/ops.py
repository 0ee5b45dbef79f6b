"""Layout ops: each an exact permutation of a variable with a known inverse (numpy only).

An op is a string, ``name`` or ``name:args``; a list of ops brings a variable from its framework's
layout to parity's canonical one (TensorFlow's). :data:`OPS` lists every valid op (the mapping file's
error messages name them).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from parity.errors import ParityError

__all__ = ["OPS", "VALUE_ONLY", "apply_ops", "invert_ops", "to_canonical_ops", "canon_shape", "check_ops", "part_of"]

#: every valid layout op (as written in a mapping file) and what it does
OPS = {
    "T": "2-D transpose (torch Linear / LSTM weight [out, in] <-> TF kernel [in, out])",
    "oihw>hwio": "torch Conv2d weight -> TF conv kernel", "hwio>oihw": "TF conv kernel -> torch Conv2d weight",
    "oiw>wio": "torch Conv1d weight -> TF conv kernel", "wio>oiw": "TF conv kernel -> torch Conv1d weight",
    "rows_chw>hwc:c,h,w": "reorder a kernel's rows from a (c, h, w) flatten to (h, w, c)",
    "rows_hwc>chw:c,h,w": "reorder a kernel's rows from a (h, w, c) flatten to (c, h, w)",
    "gates:ABCD>ACBD": "permute equal gate blocks of the last axis (letters name the gates, e.g. gates:ijfo>ifjo)",
    "rows:a:b": "rows a to b-1 of a 2-D variable: one part of a fused kernel (TF1 LSTM [in+H, 4H]: rows:0:in, rows:in:in+H)",
    "row:i": "row i of a 2-D variable, as 1-D (Keras GRU bias [2, 3H]: row:0 the input bias, row:1 the recurrent one)",
    "forget_bias:v": "values only: add v to the f block (block 2 of 4, canonical i, f, g, o) of an LSTM bias",
    "zero": "values only: 0 (the reference has no such variable: torch's second LSTM bias must stay 0)",
}
#: ops that change values but not derivatives: skipped for gradients, slots and updates
VALUE_ONLY = ("forget_bias", "zero")
_AXES = {"oihw>hwio": (2, 3, 1, 0), "hwio>oihw": (3, 2, 0, 1), "oiw>wio": (2, 1, 0), "wio>oiw": (2, 1, 0)}
_INVERSE = {"T": "T", "oihw>hwio": "hwio>oihw", "hwio>oihw": "oihw>hwio", "oiw>wio": "wio>oiw", "wio>oiw": "oiw>wio",
            "rows_chw>hwc": "rows_hwc>chw", "rows_hwc>chw": "rows_chw>hwc"}


def _valid() -> str:
    return ", ".join(OPS)


def _parse(op: str) -> tuple[str, str]:
    if not isinstance(op, str):
        raise ParityError(f"mapping: a layout op must be a string, got {op!r}; valid ops: {_valid()}")
    name, _, args = op.partition(":")
    if name not in _INVERSE and name not in ("gates", "rows", "row", "forget_bias", "zero"):
        raise ParityError(f"mapping: unknown layout op {op!r}; valid ops: {_valid()}")
    return name, args


def _ints(op: str, args: str) -> list[int]:
    try:
        out = [int(a) for a in args.split(",") if a]
    except ValueError:
        out = []
    if len(out) != 3 or min(out) < 1:
        raise ParityError(f"mapping: bad layout op {op!r}: expected three positive sizes c,h,w; valid ops: {_valid()}")
    return out


def _gates(op: str, args: str) -> tuple[str, str]:
    src, sep, dst = args.partition(">")
    if not sep or len(src) < 2 or len(set(src)) != len(src) or sorted(src) != sorted(dst):
        raise ParityError(f"mapping: bad layout op {op!r}: expected gates:<order>><order>, the same distinct gate letters "
                          "in both (e.g. gates:ijfo>ifjo)")
    return src, dst


def _rows(op: str, args: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in args.split(":"))
    except ValueError:
        a = b = -1
    if not 0 <= a < b:
        raise ParityError(f"mapping: bad layout op {op!r}: expected rows:a:b with 0 <= a < b (rows a to b-1)")
    return a, b


def _row(op: str, args: str) -> int:
    try:
        i = int(args)
    except ValueError:
        i = -1
    if i < 0:
        raise ParityError(f"mapping: bad layout op {op!r}: expected row:i with i >= 0 (row i of a 2-D variable)")
    return i


def _float(op: str, args: str) -> float:
    try:
        return float(args)
    except ValueError:
        raise ParityError(f"mapping: bad layout op {op!r}: expected forget_bias:<number>") from None


def part_of(ops) -> tuple[int, int] | None:
    """The rows ``(a, b)`` an op list takes of its variable (a ``rows:a:b`` op first), else None."""
    if ops and str(ops[0]).startswith("rows:"):
        return _rows(ops[0], ops[0][5:])
    return None


def check_ops(ops) -> None:
    """Raise a one-line ParityError unless ``ops`` is a list of valid op strings (arguments checked)."""
    if not isinstance(ops, list):
        raise ParityError(f"mapping: layout ops must be a list of op names; valid ops: {_valid()}")
    for op in ops:
        name, args = _parse(op)
        if name.startswith("rows_"):
            _ints(op, args)
        elif name == "gates":
            _gates(op, args)
        elif name == "rows":
            _rows(op, args)
        elif name == "row":
            _row(op, args)
        elif name == "forget_bias":
            _float(op, args)
        elif args:
            raise ParityError(f"mapping: layout op {op!r} takes no arguments; valid ops: {_valid()}")


def apply_ops(ops: Sequence[str], x: np.ndarray, values: bool = True, copy: bool = True) -> np.ndarray:
    """Apply layout ops in order (see :data:`OPS`); ``values=False`` (a gradient, a slot, an update):
    the :data:`VALUE_ONLY` ops are skipped. ``copy=False``: the result may be ``x`` itself or a view of it
    (a transposed kernel, a fused kernel's rows), for a caller that copies it anyway (a step's stages:
    the port boundary copies every array it is handed); the values are the same either way."""
    x = np.asarray(x)
    for op in ops:
        name, args = _parse(op)
        if name in VALUE_ONLY and not values:
            continue
        if name == "zero":
            x = np.zeros_like(x)
        elif name == "forget_bias":
            if x.ndim != 1 or x.shape[0] % 4:
                raise ParityError(f"mapping: op {op!r} does not fit a variable of shape {list(x.shape)} (an LSTM bias [4H])")
            h = x.shape[0] // 4
            x = x.copy()
            x[h:2 * h] += _float(op, args)
        elif name == "rows":
            a, b = _rows(op, args)
            if x.ndim != 2 or x.shape[0] < b:
                raise ParityError(f"mapping: op {op!r} does not fit a variable of shape {list(x.shape)}")
            x = x[a:b]
        elif name == "row":
            i = _row(op, args)
            if x.ndim != 2 or x.shape[0] <= i:
                raise ParityError(f"mapping: op {op!r} does not fit a variable of shape {list(x.shape)}")
            x = x[i]
        elif name == "T":
            x = x.T
        elif name in _AXES:
            if x.ndim != len(_AXES[name]):
                raise ParityError(f"mapping: op {op!r} does not fit a variable of shape {list(x.shape)}")
            x = np.transpose(x, _AXES[name])
        elif name in ("rows_chw>hwc", "rows_hwc>chw"):
            c, h, w = _ints(op, args)
            if x.ndim != 2 or x.shape[0] != c * h * w:
                raise ParityError(f"mapping: op {op!r} does not fit a kernel of shape {list(x.shape)}")
            perm = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)  # chw row j = hwc row perm[j]
            if name == "rows_chw>hwc":  # out[perm] = x, as a gather (a scatter from a transposed x: 6x slower)
                x = np.take(x, np.argsort(perm), axis=0)
            else:
                x = x[perm]
        else:  # gates
            src, dst = _gates(op, args)
            n = len(src)
            if x.ndim < 1 or x.shape[-1] % n:
                raise ParityError(f"mapping: op {op!r} does not fit a variable of shape {list(x.shape)} "
                                  f"(its last axis must hold {n} equal gate blocks)")
            blocks = np.split(x, n, axis=-1)
            x = np.concatenate([blocks[src.index(g)] for g in dst], axis=-1)
    return np.array(x, order="C") if copy else x  # (ascontiguousarray would make a 0-d array 1-d)


def invert_ops(ops: Sequence[str]) -> list[str]:
    """The ops that undo ``ops``."""
    out = []
    for op in reversed(list(ops)):
        name, args = _parse(op)
        if name == "gates":
            src, dst = _gates(op, args)
            out.append(f"gates:{dst}>{src}")
        elif name == "forget_bias":
            out.append(f"forget_bias:{-_float(op, args):g}")
        elif name in ("rows", "row", "zero"):
            raise ParityError(f"mapping: layout op {op!r} takes a part of a variable: it has no inverse on its own")
        else:
            out.append(_INVERSE[name] + (":" + args if args else ""))
    return out


def to_canonical_ops(framework: str, spec, flatten: Mapping[str, dict] | None = None) -> list[str]:
    """The ops that bring a variable from its framework's layout to the canonical (TF) one."""
    if framework != "torch":
        return []
    if spec.kind == "dense_kernel" and len(spec.shape) == 2:
        ops = ["T"]
        info = (flatten or {}).get(spec.name)
        if info and info.get("order") == "chw":
            c, h, w = info["chw"]
            ops.append(f"rows_chw>hwc:{c},{h},{w}")
        return ops
    if spec.kind == "conv_kernel" and len(spec.shape) == 4:
        return ["oihw>hwio"]
    if spec.kind == "conv_kernel" and len(spec.shape) == 3:
        return ["oiw>wio"]
    if spec.kind in ("lstm_kernel", "lstm_recurrent") and len(spec.shape) == 2:
        return ["T"]
    return []


def canon_shape(shape, ops) -> tuple:
    """The shape of a variable of ``shape`` after ``ops``."""
    return tuple(apply_ops(ops, np.empty(shape, dtype=np.int8), values=False).shape) if ops else tuple(shape)
