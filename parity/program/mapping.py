"""Map one program's variables and layer outputs onto another's: by order, shape and kind.

numpy only. Each side's variables (:class:`~parity.portkit.program.ParamSpec`, own names, own layout)
are brought to parity's canonical layout (TensorFlow's: Dense ``[in, out]``, conv ``HWIO``,
flatten order ``(h, w, c)``) by a short list of exact permutations ("ops"); two variables pair
when they have the same canonical shape and a compatible kind, the k-th of a (shape, kind) class
on one side with the k-th on the other (creation / call order). A class with different counts on
the two sides, or a variable with no partner, stops with one line listing both sides: never a
silent guess. The table is printed, and saved as JSON the user can edit and pass back.

Layer outputs pair first by value (a probe forward from the mapped weights: the same numbers
mean the same layer), then by order and shape between those anchors when that is unambiguous;
the rest is listed as not compared (pair them in the JSON's ``"forward"`` list).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from parity.errors import ParityError

__all__ = ["Mapping_", "Entry", "apply_ops", "invert_ops", "to_canonical_ops", "auto_map", "match_activations",
           "same_values", "load_mapping", "save_mapping", "format_table", "MAPPING_FORMAT"]

MAPPING_FORMAT = 1

#: kinds that may pair with each other (besides equal kinds and "other")
_COMPATIBLE = {frozenset({"bias", "bn_beta"}), frozenset({"bias", "ln_beta"}), frozenset({"bn_gamma", "ln_gamma"})}


def _compatible(a: str, b: str) -> bool:
    return a == b or "other" in (a, b) or frozenset({a, b}) in _COMPATIBLE


# -- layout ops: each an exact permutation with a known inverse ------------------------------------
def _parse(op: str) -> tuple[str, list[int]]:
    name, _, args = op.partition(":")
    try:
        return name, [int(a) for a in args.split(",") if a]
    except ValueError:
        raise ParityError(f"mapping: bad layout op {op!r}") from None


_AXES = {"oihw>hwio": (2, 3, 1, 0), "hwio>oihw": (3, 2, 0, 1), "oiw>wio": (2, 1, 0), "wio>oiw": (2, 1, 0)}


def apply_ops(ops: Sequence[str], x: np.ndarray) -> np.ndarray:
    """Apply layout ops in order: ``T`` (2-D transpose), ``oihw>hwio``, ``hwio>oihw``, ``oiw>wio``,
    ``wio>oiw``, ``rows_chw>hwc:c,h,w`` / ``rows_hwc>chw:c,h,w`` (reorder a kernel's rows)."""
    x = np.asarray(x)
    for op in ops:
        name, args = _parse(op)
        if name == "T":
            x = x.T
        elif name in _AXES:
            x = np.transpose(x, _AXES[name])
        elif name in ("rows_chw>hwc", "rows_hwc>chw"):
            if len(args) != 3 or x.ndim != 2 or x.shape[0] != int(np.prod(args)):
                raise ParityError(f"mapping: op {op!r} does not fit a kernel of shape {list(x.shape)}")
            c, h, w = args
            perm = np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)  # chw row j = hwc row perm[j]
            if name == "rows_chw>hwc":
                out = np.empty_like(x)
                out[perm] = x
                x = out
            else:
                x = x[perm]
        else:
            raise ParityError(f"mapping: unknown layout op {op!r} (known: T, oihw>hwio, hwio>oihw, oiw>wio, wio>oiw, rows_chw>hwc:c,h,w, rows_hwc>chw:c,h,w)")
    return np.array(x, order="C")  # (ascontiguousarray would make a 0-d array 1-d)


_INVERSE = {"T": "T", "oihw>hwio": "hwio>oihw", "hwio>oihw": "oihw>hwio", "oiw>wio": "wio>oiw", "wio>oiw": "oiw>wio",
            "rows_chw>hwc": "rows_hwc>chw", "rows_hwc>chw": "rows_chw>hwc"}


def invert_ops(ops: Sequence[str]) -> list[str]:
    """The ops that undo ``ops``."""
    out = []
    for op in reversed(list(ops)):
        name, _, args = op.partition(":")
        if name not in _INVERSE:
            raise ParityError(f"mapping: unknown layout op {op!r}")
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


def _canon_shape(shape, ops) -> tuple:
    return tuple(apply_ops(ops, np.empty(shape, dtype=np.int8)).shape) if ops else tuple(shape)


# -- the mapping ---------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One pair: the reference's variable, the port's, and each side's ops to the canonical layout."""

    reference: str
    port: str
    reference_ops: list[str]
    port_ops: list[str]
    shape: tuple  # canonical
    kind: str
    trainable: bool = True


@dataclass
class Mapping_:
    """The whole mapping: variable pairs, layer-output pairs, and what is left out."""

    reference_file: str
    port_file: str
    params: list[Entry] = field(default_factory=list)
    forward: list[tuple[str, str]] = field(default_factory=list)
    not_compared: dict[str, list[str]] = field(default_factory=dict)  # "reference"/"port"/"forward ..." -> names
    notes: list[str] = field(default_factory=list)

    def by_port(self) -> dict[str, Entry]:
        return {e.port: e for e in self.params}

    def by_reference(self) -> dict[str, Entry]:
        return {e.reference: e for e in self.params}

    def port_weights(self, reference_params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reference's values in the port's names and layout (what the port loads)."""
        out = {}
        for e in self.params:
            if e.reference not in reference_params:
                raise ParityError(f"mapping: the reference has no variable {e.reference!r}")
            canon = apply_ops(e.reference_ops, reference_params[e.reference])
            out[e.port] = apply_ops(invert_ops(e.port_ops), canon)
        return out

    def to_json(self) -> dict:
        return {"format": MAPPING_FORMAT, "reference": self.reference_file, "port": self.port_file,
                "params": [{"reference": e.reference, "port": e.port, "reference_ops": e.reference_ops,
                            "port_ops": e.port_ops, "shape": list(e.shape), "kind": e.kind, "trainable": e.trainable}
                           for e in self.params],
                "forward": [{"reference": a, "port": b} for a, b in self.forward],
                "not_compared": self.not_compared, "notes": self.notes}

    @classmethod
    def from_json(cls, data: dict, where: str = "mapping") -> "Mapping_":
        """Read the JSON form (:meth:`to_json`); anything malformed is one line naming the entry and the field."""
        if not isinstance(data, dict) or data.get("format") != MAPPING_FORMAT or not isinstance(data.get("params"), list):
            raise ParityError(f"{where}: not a parity mapping file (expected a JSON object with format {MAPPING_FORMAT} and a 'params' list)")
        m = cls(str(data.get("reference", "?")), str(data.get("port", "?")))
        m.params = [_entry(p, i, where) for i, p in enumerate(data["params"])]
        forward, not_compared = data.get("forward", []), data.get("not_compared") or {}
        if not isinstance(forward, list) or not all(isinstance(f, dict) and {"reference", "port"} <= set(f) for f in forward):
            raise ParityError(f"{where}: 'forward' must be a list of {{\"reference\": name, \"port\": name}} objects")
        if not isinstance(not_compared, dict) or not all(isinstance(v, list) for v in not_compared.values()):
            raise ParityError(f"{where}: 'not_compared' must be an object of name lists")
        m.forward = [(str(f["reference"]), str(f["port"])) for f in forward]
        m.not_compared = {str(k): [str(n) for n in v] for k, v in not_compared.items()}
        m.notes = [str(n) for n in data.get("notes") or []]
        return m


def _entry(p, i: int, where: str) -> Entry:
    """One entry of a mapping file's ``params``, checked field by field."""
    if not isinstance(p, dict):
        raise ParityError(f"{where}: entry {i} of 'params' is a JSON {type(p).__name__}, not an object")
    at = f"{where}: entry {i}" + (f" ({p.get('reference')} -> {p.get('port')})" if {"reference", "port"} <= set(p) else "")
    for key in ("reference", "port"):
        if not isinstance(p.get(key), str) or not p[key]:
            raise ParityError(f"{at} needs '{key}': a variable name (a string), got {json.dumps(p.get(key))}")
    shape = p.get("shape", [])
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ParityError(f"{at}: 'shape' must be a list of non-negative integers, got {json.dumps(shape)}")
    ops = {key: p.get(key, []) for key in ("reference_ops", "port_ops")}
    for key, names in ops.items():
        if not isinstance(names, list) or not all(isinstance(o, str) for o in names):
            raise ParityError(f"{at}: '{key}' must be a list of layout op names, got {json.dumps(names)}")
        try:
            invert_ops(names)  # every op name is known
        except ParityError as exc:
            raise ParityError(f"{at}: '{key}': {str(exc).removeprefix('mapping: ')}") from None
    kind, trainable = p.get("kind", "other"), p.get("trainable", True)
    if not isinstance(kind, str) or not isinstance(trainable, bool):
        raise ParityError(f"{at}: 'kind' must be a string and 'trainable' true or false")
    return Entry(p["reference"], p["port"], ops["reference_ops"], ops["port_ops"], tuple(shape), kind, trainable)


def _describe(specs) -> str:
    return ", ".join(f"{s.name} {list(s.shape)}" for s in specs)


def auto_map(ref_specs, ref_framework: str, port_specs, port_framework: str, *, ref_flatten=None, port_flatten=None,
             reference_file: str = "reference", port_file: str = "port") -> Mapping_:
    """Pair the two programs' variables by canonical shape + kind, in order within each class.

    Raises:
        ParityError: (one line) a class has different counts on the two sides, or a trainable variable
            (or BatchNorm statistic) has no partner; the message lists both sides and the unresolved ones.
    """
    try:  # trainable pairs with trainable, state with state; when that cannot pair all, ignore it
        return _auto_map(ref_specs, ref_framework, port_specs, port_framework, ref_flatten, port_flatten,
                         reference_file, port_file, by_trainable=True)
    except ParityError as strict:
        try:
            return _auto_map(ref_specs, ref_framework, port_specs, port_framework, ref_flatten, port_flatten,
                             reference_file, port_file, by_trainable=False)
        except ParityError:
            raise strict from None


def _auto_map(ref_specs, ref_framework, port_specs, port_framework, ref_flatten, port_flatten, reference_file,
              port_file, *, by_trainable: bool) -> Mapping_:
    m = Mapping_(reference_file, port_file)
    ra = [(s, to_canonical_ops(ref_framework, s, ref_flatten)) for s in ref_specs]
    pa = [(s, to_canonical_ops(port_framework, s, port_flatten)) for s in port_specs]
    for flat, side in ((port_flatten, port_framework), (ref_flatten, ref_framework)):
        for name, info in (flat or {}).items():
            if info.get("order") not in ("chw", "hwc"):
                m.notes.append(f"{side}: the input of {name} is a flatten in neither (c, h, w) nor (h, w, c) order: its rows are not permuted (edit the mapping if they must be)")
    rc = [(s, ops, _canon_shape(s.shape, ops)) for s, ops in ra]
    pc = [(s, ops, _canon_shape(s.shape, ops)) for s, ops in pa]
    used: set[int] = set()
    unresolved: list[str] = []
    for i, (s, ops, shape) in enumerate(rc):
        same = [j for j, (t, _, tshape) in enumerate(pc) if tshape == shape and _compatible(s.kind, t.kind)
                and (not by_trainable or t.trainable == s.trainable)]
        mine = [k for k, (u, _, ushape) in enumerate(rc) if ushape == shape and _compatible(s.kind, u.kind)
                and (not by_trainable or u.trainable == s.trainable)]
        free = [j for j in same if j not in used]
        if len(same) != len(mine):
            if not free:
                if s.trainable or s.kind in ("bn_mean", "bn_var"):
                    unresolved.append(f"{s.name} {list(s.shape)} has no partner")
                else:
                    m.not_compared.setdefault("reference", []).append(s.name)
                continue
            if s.trainable or s.kind in ("bn_mean", "bn_var"):
                unresolved.append(f"{s.name} {list(s.shape)}: {len(mine)} such on the reference side, {len(same)} on the port side "
                                  f"({', '.join(pc[j][0].name for j in same)})")
                continue
            m.not_compared.setdefault("reference", []).append(s.name)
            continue
        j = free[0]
        used.add(j)
        t, tops, _ = pc[j]
        m.params.append(Entry(s.name, t.name, ops, tops, shape, s.kind if s.kind != "other" else t.kind, s.trainable and t.trainable))
    for j, (t, _, _) in enumerate(pc):
        if j in used:
            continue
        if t.trainable or t.kind in ("bn_mean", "bn_var"):
            unresolved.append(f"port's {t.name} {list(t.shape)} has no partner")
        else:
            m.not_compared.setdefault("port", []).append(t.name)
    if unresolved:
        n_ref = sum(int(np.prod(s.shape)) for s in ref_specs if s.trainable)
        n_port = sum(int(np.prod(s.shape)) for s in port_specs if s.trainable)
        size = f"models of different sizes ({n_ref} vs {n_port} trainable values); " if n_ref != n_port else ""
        raise ParityError(
            f"cannot map the variables automatically: {size}unresolved: {'; '.join(unresolved)}. "
            f"Reference ({ref_framework}): {_describe(ref_specs)}. Port ({port_framework}): {_describe(port_specs)}. "
            "Write the pairs in a mapping file (--save-mapping from a run that maps, or see docs/own-model.md) and pass it with --mapping"
        )
    return m


def same_values(a, b, rtol: float = 1e-6) -> bool:
    """Whether two arrays have one shape and agree to ``rtol`` of their largest magnitude."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return False
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    return bool(np.max(np.abs(a - b), initial=0.0) <= rtol * max(scale, 1e-300))


def match_activations(ref: Mapping[str, np.ndarray], port: Mapping[str, np.ndarray], *, rtol: float = 1e-6) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Pair layer outputs: equal values first (in order), then order + shape between the anchors.

    ``ref`` and ``port`` are canonical-layout outputs of one probe forward from the same weights
    and batch, in call order. ``rtol`` (relative to the tensor's largest magnitude): 1e-6 is far
    above float64 rounding through a few layers (~1e-15) and far below any real difference.

    Returns (pairs in reference order, reference names left out, port names left out).
    """
    rn, pn = list(ref), list(port)

    def equal(a, b):
        return same_values(a, b, rtol)

    anchors: list[tuple[int, int]] = []
    start = 0
    for i, r in enumerate(rn):
        for j in range(start, len(pn)):
            if equal(ref[r], port[pn[j]]):
                # a run of equal outputs (relu after relu, identity dropout): pair the last of each run
                anchors.append((i, j))
                start = j + 1
                break
    # fill the gaps between anchors: the longest order-preserving pairing by shape (earliest first)
    pairs = list(anchors)
    bounds = [(-1, -1)] + anchors + [(len(rn), len(pn))]
    for (i0, j0), (i1, j1) in zip(bounds, bounds[1:]):
        gr, gp = list(range(i0 + 1, i1)), list(range(j0 + 1, j1))
        sr = [np.shape(ref[rn[i]]) for i in gr]
        sp = [np.shape(port[pn[j]]) for j in gp]
        n, k = len(sr), len(sp)
        if not n or not k:
            continue
        L = [[0] * (k + 1) for _ in range(n + 1)]
        for a in range(n - 1, -1, -1):
            for b in range(k - 1, -1, -1):
                L[a][b] = 1 + L[a + 1][b + 1] if sr[a] == sp[b] else max(L[a + 1][b], L[a][b + 1])
        a = b = 0
        while a < n and b < k:
            if sr[a] == sp[b] and L[a][b] == 1 + L[a + 1][b + 1]:
                pairs.append((gr[a], gp[b]))
                a, b = a + 1, b + 1
            elif L[a + 1][b] >= L[a][b + 1]:
                a += 1
            else:
                b += 1
    if anchors and anchors[-1][1] == len(pn) - 1:
        # the port's last output agrees with the reference: the model computes the same thing, so an
        # unequal pair before it is two different cuts of one layer (MatMul vs Linear), not a bug
        pairs = [(i, j) for i, j in pairs if (i, j) in anchors or equal(ref[rn[i]], port[pn[j]])]
    pairs.sort()
    # keep the port side monotone (a crossing pair is a guess)
    out, last = [], -1
    for i, j in pairs:
        if j > last:
            out.append((i, j))
            last = j
    used_r = {i for i, _ in out}
    used_p = {j for _, j in out}
    return ([(rn[i], pn[j]) for i, j in out], [rn[i] for i in range(len(rn)) if i not in used_r],
            [pn[j] for j in range(len(pn)) if j not in used_p])


def save_mapping(m: Mapping_, path: str) -> str:
    """Write the mapping as JSON, atomically (:mod:`parity.io`); a path that cannot be written is a one-line ParityError."""
    from parity.io import atomic_write, check_output

    check_output(path, "--save-mapping")
    with atomic_write(path) as fh:
        json.dump(m.to_json(), fh, indent=1)
        fh.write("\n")
    return path


def load_mapping(path: str) -> Mapping_:
    """Read a mapping file; any problem is a one-line :class:`ParityError`."""
    if os.path.isdir(path):
        raise ParityError(f"mapping file {path} is a directory, not a mapping file (JSON)")
    if not os.path.isfile(path):
        raise ParityError(f"mapping file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ParityError(f"mapping file {path} is not readable JSON ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    return Mapping_.from_json(data, where=f"mapping file {path}")


def format_table(m: Mapping_) -> str:
    """The mapping as a table (what `parity diff` prints before the comparison)."""
    rows = [("reference", "port", "shape (canonical)", "kind", "layout: reference / port")]
    for e in m.params:
        rows.append((e.reference, e.port, "x".join(map(str, e.shape)) or "scalar", e.kind + ("" if e.trainable else " (state)"),
                     f"{' '.join(e.reference_ops) or '-'} / {' '.join(e.port_ops) or '-'}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["variables:"] + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if m.forward:
        wr = max(len(a) for a, _ in m.forward)
        lines.append("layer outputs compared:")
        lines += [f"  {a.ljust(wr)}  {b}" for a, b in m.forward]
    for side, names in m.not_compared.items():
        if names:
            lines.append(f"not compared ({side}): {', '.join(names)}")
    lines += [f"note: {n}" for n in m.notes]
    return "\n".join(lines)
