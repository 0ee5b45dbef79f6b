"""The mapping itself: variable pairs, layer-output pairs, what is left out; its JSON file, read and
checked completely (every field known and meaningful, each variable used once), and its table (numpy only).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from parity.errors import ParityError
from parity.portkit.program import KINDS

from .ops import apply_ops, check_ops, invert_ops, part_of

__all__ = ["Entry", "Mapping_", "MAPPING_FORMAT", "VALUE_STAGES", "used_once", "FILE_FIELDS", "ENTRY_FIELDS", "load_mapping", "save_mapping",
           "format_table"]

MAPPING_FORMAT = 1
#: the fields a mapping file may hold (top level), and those of one ``params`` entry
FILE_FIELDS = ("format", "reference", "port", "params", "forward", "leave_out", "not_compared", "notes")
ENTRY_FIELDS = ("reference", "port", "name", "reference_ops", "port_ops", "shape", "kind", "trainable")
#: the stages that hold values (the others hold derivatives: gradients, slots, updates), see VALUE_ONLY ops
VALUE_STAGES = ("parameters", "state", "constrained")


@dataclass
class Entry:
    """One pair: the reference's variable, the port's, and each side's ops to the canonical layout.

    ``shape`` is the canonical shape; ``()`` in an entry read from a file that states none."""

    reference: str
    port: str
    reference_ops: list[str]
    port_ops: list[str]
    shape: tuple  # canonical
    kind: str
    trainable: bool = True
    shape_given: bool = True
    name: str = ""  # the pair's name in the report: the reference's, unless it has several pairs

    @property
    def canonical(self) -> str:
        return self.name or self.reference


@dataclass
class Mapping_:
    """The whole mapping: variable pairs, layer-output pairs, and what is left out."""

    reference_file: str
    port_file: str
    params: list[Entry] = field(default_factory=list)
    forward: list[tuple[str, str]] = field(default_factory=list)
    not_compared: dict[str, list[str]] = field(default_factory=dict)  # "reference"/"port"/"forward ..." -> names
    notes: list[str] = field(default_factory=list)
    leave_out: list[str] = field(default_factory=list)  # report names (a pair, or pair/slot) not compared
    forward_edits: list[dict] = field(default_factory=list)  # the file's "forward" with a {"drop": name}: edits

    def by_port(self) -> dict[str, Entry]:
        return {e.port: e for e in self.params}

    def by_reference(self) -> dict[str, Entry]:
        return {e.reference: e for e in self.params}

    def port_weights(self, reference_params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The reference's values in the port's names and layout (what the port loads); a port variable
        taken in parts (``rows:a:b`` first in its ops) is assembled from its entries."""
        out: dict[str, np.ndarray] = {}
        parts: dict[str, list] = {}
        for e in self.params:
            if e.reference not in reference_params:
                raise ParityError(f"mapping: the reference has no variable {e.reference!r}")
            canon = apply_ops(e.reference_ops, reference_params[e.reference])
            part = part_of(e.port_ops)
            if part is None:
                out[e.port] = apply_ops(invert_ops(e.port_ops), canon)
            else:
                parts.setdefault(e.port, []).append((part, apply_ops(invert_ops(e.port_ops[1:]), canon)))
        for name, pieces in parts.items():
            rows = max(b for (_, b), _ in pieces)
            whole = np.zeros((rows,) + pieces[0][1].shape[1:], dtype=pieces[0][1].dtype)
            covered = np.zeros(rows, dtype=int)
            for (a, b), piece in pieces:
                whole[a:b] = piece
                covered[a:b] += 1
            if not np.all(covered == 1):
                raise ParityError(f"mapping: the parts of the port's {name} (rows ops) do not cover its rows once each")
            out[name] = whole
        return out

    def views(self, side: str) -> dict[str, list[tuple[str, list[str], bool]]]:
        """One side's own variable name -> its pairs ``(name in the report, ops to canonical, trainable)``."""
        out: dict[str, list] = {}
        for e in self.params:
            own, ops = (e.reference, e.reference_ops) if side == "reference" else (e.port, e.port_ops)
            out.setdefault(own, []).append((e.canonical, ops, e.trainable))
        return out

    def canonical(self, side: str, arrays: Mapping[str, np.ndarray], stage: str = "parameters",
                  trainable_only: bool = False) -> dict[str, np.ndarray]:
        """One side's arrays of one stage (own names; ``name/slot`` keys for slots) in report names and the
        canonical layout; the value-only ops (forget_bias, zero) apply to the value stages only; slots exist
        for trained pairs only (a frozen second bias has none on one side). The arrays returned may be
        ``arrays``' own or views of them (no copy: the port boundary copies a step's arrays,
        :func:`parity.run.boundary.to_stages`); a value-only op (forget_bias, zero) makes a new array."""
        views, values, out = self.views(side), stage in VALUE_STAGES, {}
        trainable_only = trainable_only or stage == "slots"
        left = set(self.leave_out)
        for key, arr in arrays.items():
            own, slot = (key.rpartition("/")[0], "/" + key.rpartition("/")[2]) if stage == "slots" else (key, "")
            for name, ops, trainable in views.get(own, ()):
                if (trainable or not trainable_only) and name not in left and name + slot not in left:
                    out[name + slot] = apply_ops(ops, arr, values=values, copy=False)
        return out

    def to_json(self) -> dict:
        data = {"format": MAPPING_FORMAT, "reference": self.reference_file, "port": self.port_file,
                "params": [{"reference": e.reference, "port": e.port, **({"name": e.name} if e.name else {}),
                            "reference_ops": e.reference_ops,
                            "port_ops": e.port_ops, **({"shape": list(e.shape)} if e.shape_given else {}),
                            "kind": e.kind, "trainable": e.trainable} for e in self.params],
                "forward": [{"reference": a, "port": b} for a, b in self.forward],
                "not_compared": self.not_compared, "notes": self.notes}
        if self.leave_out:
            data["leave_out"] = list(self.leave_out)
        return data

    @classmethod
    def from_json(cls, data: dict, where: str = "mapping") -> "Mapping_":
        """Read the JSON form (:meth:`to_json`); anything malformed or unknown is one line naming the entry and
        the field (with the accepted ones); a variable used twice on one side is an error."""
        if not isinstance(data, dict) or data.get("format") != MAPPING_FORMAT or not isinstance(data.get("params"), list):
            raise ParityError(f"{where}: not a parity mapping file (expected a JSON object with format {MAPPING_FORMAT} and a 'params' list)")
        unknown = [k for k in data if k not in FILE_FIELDS]
        if unknown:
            raise ParityError(f"{where}: unknown field {unknown[0]!r}; the fields of a mapping file are {', '.join(FILE_FIELDS)}")
        m = cls(str(data.get("reference", "?")), str(data.get("port", "?")))
        m.params = [_entry(p, i, where) for i, p in enumerate(data["params"])]
        used_once(m.params, where)
        forward, not_compared = data.get("forward", []), data.get("not_compared") or {}
        if not isinstance(forward, list) or not all(isinstance(f, dict) and set(f) in ({"reference", "port"}, {"drop"})
                                                    and all(isinstance(v, str) for v in f.values()) for f in forward):
            raise ParityError(f"{where}: each 'forward' entry is {{\"reference\": name, \"port\": name}} or {{\"drop\": name}} "
                              "(layer output names; only pairs: exactly these pairs; with a drop: edits of the automatic "
                              "pairing; an empty list: pair them automatically)")
        if not isinstance(not_compared, dict) or not all(isinstance(v, list) for v in not_compared.values()):
            raise ParityError(f"{where}: 'not_compared' must be an object of name lists")
        if any("drop" in f for f in forward):  # edits applied to the automatic pairing (parity.program.outputs)
            m.forward_edits = [dict(f) for f in forward]
        else:  # exactly these pairs
            m.forward = [(f["reference"], f["port"]) for f in forward]
        m.not_compared = {str(k): [str(n) for n in v] for k, v in not_compared.items()}
        m.notes = [str(n) for n in data.get("notes") or []]
        leave = data.get("leave_out", [])
        if not isinstance(leave, list) or not all(isinstance(n, str) and n for n in leave):
            raise ParityError(f"{where}: 'leave_out' must be a list of names in the report (a pair's name, or "
                              f"name/slot), got {json.dumps(leave)}")
        m.leave_out = list(dict.fromkeys(leave))
        return m


def used_once(params: list[Entry], where: str) -> None:
    """Each variable pairs once; a reference variable in several pairs needs a distinct ``name`` in each, a
    port variable in several pairs must be taken in parts (a ``rows:a:b`` op first)."""
    def ok(side: str, e: Entry) -> bool:
        return bool(e.name) if side == "reference" else side == "port" and part_of(e.port_ops) is not None

    seen: dict[tuple, int] = {}
    for i, e in enumerate(params):
        for side, name in (("reference", e.reference), ("port", e.port), ("name", e.canonical)):
            j = seen.get((side, name))
            if j is not None and not (ok(side, e) and ok(side, params[j])):
                what = "report name" if side == "name" else f"{side}'s"
                raise ParityError(f"{where}: the {what} {name!r} is used twice (entries {j} and {i}); each variable pairs "
                                  "with one variable of the other side (a fused kernel split in parts: 'rows:a:b' ops and a "
                                  "'name' for each part)")
            seen.setdefault((side, name), i)


def _entry(p, i: int, where: str) -> Entry:
    """One entry of a mapping file's ``params``, checked field by field."""
    if not isinstance(p, dict):
        raise ParityError(f"{where}: entry {i} of 'params' is a JSON {type(p).__name__}, not an object")
    at = f"{where}: entry {i}" + (f" ({p.get('reference')} -> {p.get('port')})" if {"reference", "port"} <= set(p) else "")
    unknown = [k for k in p if k not in ENTRY_FIELDS]
    if unknown:
        raise ParityError(f"{at}: unknown field {unknown[0]!r}; the fields of an entry are {', '.join(ENTRY_FIELDS)}")
    for key in ("reference", "port"):
        if not isinstance(p.get(key), str) or not p[key]:
            raise ParityError(f"{at} needs '{key}': a variable name (a string), got {json.dumps(p.get(key))}")
        if p[key] == "TODO":
            raise ParityError(f"{at}: '{key}' is still \"TODO\": write the {key}'s variable that pairs with it "
                              "(the names of both sides are in the error that wrote this draft)")
    shape = p.get("shape")
    if shape is not None and (not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape)):
        raise ParityError(f"{at}: 'shape' must be a list of non-negative integers, got {json.dumps(shape)}")
    ops = {key: p.get(key, []) for key in ("reference_ops", "port_ops")}
    for key, names in ops.items():
        try:
            check_ops(names)
        except ParityError as exc:
            raise ParityError(f"{at}: '{key}': {str(exc).removeprefix('mapping: ')}") from None
    name = p.get("name", "")
    if not isinstance(name, str):
        raise ParityError(f"{at}: 'name' must be a string (the pair's name in the report), got {json.dumps(name)}")
    kind, trainable = p.get("kind", "other"), p.get("trainable", True)
    if kind not in KINDS:
        raise ParityError(f"{at}: unknown kind {json.dumps(kind)}; kinds: {', '.join(KINDS)}")
    if not isinstance(trainable, bool):
        raise ParityError(f"{at}: 'trainable' must be true or false, got {json.dumps(trainable)}")
    return Entry(p["reference"], p["port"], list(ops["reference_ops"]), list(ops["port_ops"]), tuple(shape or ()),
                 kind, trainable, shape_given=shape is not None, name=name)


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
        rows.append((e.canonical, e.port, "x".join(map(str, e.shape)) or "scalar", e.kind + ("" if e.trainable else " (state)"),
                     f"{' '.join(e.reference_ops) or '-'} / {' '.join(e.port_ops) or '-'}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["variables:"] + ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    if m.leave_out:
        lines.append(f"left out (mapping file): {', '.join(m.leave_out)}")
    if m.forward:
        wr = max(len(a) for a, _ in m.forward)
        lines.append("layer outputs compared:")
        lines += [f"  {a.ljust(wr)}  {b}" for a, b in m.forward]
    for side, names in m.not_compared.items():
        if names:
            lines.append(f"not compared ({side}): {', '.join(names)}")
    lines += [f"note: {n}" for n in m.notes]
    return "\n".join(lines)
