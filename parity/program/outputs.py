"""Pair the layer outputs of a program and its port by structure (numpy only).

Both captures record their layer outputs in call order with a kind (linear, conv, activation, pool,
norm, dropout, embedding, rnn, rnn_state, reshape, other; ``any`` matches every kind). Two outputs
can pair only when their kinds agree, so a post-ReLU output never pairs with a pre-ReLU one, nor a
pre-dropout one with a post-dropout one. Among the order-preserving pairings of compatible outputs
the one with the most pairs is taken, and among those the one with the most pairs of equal shape,
then with the most pairs whose values agree at the probe (the same weights and batch on both sides):
the values only confirm (or choose between) structural pairs, they never make one. Two outputs of
one kind and rank whose shapes differ still pair in call order (the k-th conv with the k-th conv: a
first conv without padding makes every later map smaller, and pairing by shape would shift the whole
sequence): the comparison reports the shape difference at that layer, and a note names it
(:attr:`Pairing.reshaped`). A custom leaf module (kind ``other``) or an output of unknown kind
(``any``) pairs only at equal shape, a custom module with another kind only where their values agree.

Every output left unpaired gets a reason (:attr:`Pairing.reasons`), and a probe where nothing
pairs says why in one note (:func:`unpaired_notes`). :func:`apply_forward_edits` applies the user's
edits (the mapping file's ``"forward"`` list) to the automatic pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from parity.errors import ParityError
from parity.program.output_owners import Owners, owned_reason, owner_of, owner_rule, owners_from

__all__ = ["Pairing", "Owners", "owners_from", "owner_of", "pair_outputs", "apply_forward_edits", "unpaired_notes", "same_output", "kinds_of", "recording_notes", "reshaped_note", "FORWARD_EDITS"]

#: the forms of one entry of the mapping file's "forward" list (see :func:`apply_forward_edits`)
FORWARD_EDITS = ('{"reference": A, "port": B} (compare A with B: adds the pair, or re-pairs A and B)',
                 '{"drop": NAME} (do not compare the reference or port output NAME)')


def same_output(a, b, rtol: float = 1e-6) -> bool:
    """Equal shapes and values within ``rtol`` of the larger magnitude: 1e-6 is far above float64
    rounding through a few layers (~1e-15) and far below any real difference."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.size == 0:
        return True
    a, b = a.astype(np.float64), b.astype(np.float64)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return False
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-30)
    return float(np.max(np.abs(a - b))) <= rtol * scale


@dataclass
class Pairing:
    """The pairs (reference name, port name) in reference order; the ones equal at the probe; and
    for each output left unpaired (``"reference NAME"`` / ``"port NAME"``) the reason."""

    pairs: list = field(default_factory=list)
    confirmed: set = field(default_factory=set)
    left_reference: list = field(default_factory=list)
    left_port: list = field(default_factory=list)
    reasons: dict = field(default_factory=dict)
    reshaped: list = field(default_factory=list)  # (reference, port, kind, ordinal of that kind) paired at different shapes
    notes: list = field(default_factory=list)  # how the pairing used the variable mapping (sub-models)


def _kind(kinds: Mapping[str, str] | None, name: str) -> str:
    return (kinds or {}).get(name) or "any"


def _compatible(ka: str, kb: str) -> bool:
    return ka == kb or "any" in (ka, kb)


def pair_outputs(ref: Mapping[str, np.ndarray], port: Mapping[str, np.ndarray], ref_kinds: Mapping[str, str] | None = None,
                 port_kinds: Mapping[str, str] | None = None, *, rtol: float = 1e-6, owners: Owners | None = None) -> Pairing:
    """Pair the outputs of one probe forward (canonical layout, call order) by kind, shape and order.

    ``owners`` (:func:`owners_from`: the variable mapping's layer pairs): an output of a layer pairs only
    with an output of the layer the mapping pairs with it, and where the mapping joins the sides' sub-models
    one to one (a GAN's ``generator``/``discriminator`` ~ ``G``/``D``), outputs pair in call order within
    each sub-model, whatever order the programs call the sub-models in."""
    out = Pairing()
    allowed, rn, pn, amb_r, amb_p, group = owner_rule(list(ref), list(port), owners, out)
    index_r = {a: i for i, a in enumerate(ref)}
    n, k = len(rn), len(pn)
    kr = [_kind(ref_kinds, a) for a in rn]
    kp = [_kind(port_kinds, b) for b in pn]
    sr = [np.shape(ref[a]) for a in rn]
    sp = [np.shape(port[b]) for b in pn]
    equal: dict[tuple[int, int], bool] = {}

    def score(i: int, j: int) -> int:
        # 0: cannot pair; 1: same kind and rank, other shape; 2: a structural pair; 3: one the probe confirms
        if allowed is not None and not allowed(rn[i], pn[j]):
            return 0
        if sr[i] != sp[j]:
            same_rank = len(sr[i]) == len(sp[j]) and len(sr[i]) > 0 and sr[i][0] == sp[j][0]  # batch axis too
            return int(kr[i] == kp[j] and kr[i] not in ("any", "other") and same_rank)
        if (i, j) not in equal:
            equal[(i, j)] = same_output(ref[rn[i]], port[pn[j]], rtol)
        if _compatible(kr[i], kp[j]):
            return 3 if equal[(i, j)] else 2
        if "other" in (kr[i], kp[j]) and equal[(i, j)]:
            return 2  # a custom module parity has no kind for: paired only by its value
        return 0

    def plus(nxt: tuple, s: int) -> tuple:
        return (nxt[0] + 1, nxt[1] + (s > 1), nxt[2] + s)

    # best[i][j]: (pairs, pairs of equal shape, score) of the best pairing of rn[i:], pn[j:]
    best = [[(0, 0, 0)] * (k + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(k - 1, -1, -1):
            cand = max(best[i + 1][j], best[i][j + 1])
            s = score(i, j)
            if s:
                cand = max(cand, plus(best[i + 1][j + 1], s))
            best[i][j] = cand
    i = j = 0
    while i < n and j < k:
        s = score(i, j)
        if s and best[i][j] == plus(best[i + 1][j + 1], s):
            out.pairs.append((rn[i], pn[j]))
            if equal.get((i, j)):
                out.confirmed.add((rn[i], pn[j]))
            if s == 1:
                out.reshaped.append((rn[i], pn[j], kr[i], kr[:i + 1].count(kr[i])))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    _confirmed_between(out, ref, port, ref_kinds, port_kinds, amb_r, amb_p, group, rtol)
    _cuts(out, ref, port, index_r, group)
    out.pairs.sort(key=lambda p: index_r[p[0]])  # (sub-models reordered: back to the reference's call order)
    used_r = {a for a, _ in out.pairs}
    used_p = {b for _, b in out.pairs}
    out.left_reference = [a for a in ref if a not in used_r]
    out.left_port = [b for b in port if b not in used_p]
    out.reasons.update({f"reference {x}": why for x, why in amb_r.items()})
    out.reasons.update({f"port {x}": why for x, why in amb_p.items()})
    for side, names, kinds, shapes, other, okinds, oshapes, oname in (
            ("reference", rn, kr, sr, pn, kp, sp, "port"), ("port", pn, kp, sp, rn, kr, sr, "reference")):
        left = set(out.left_reference if side == "reference" else out.left_port)
        for idx, name in enumerate(names):
            if name in left and f"{side} {name}" not in out.reasons:
                why = _reason(kinds[idx], shapes[idx], okinds, oshapes, oname)
                out.reasons[f"{side} {name}"] = (owned_reason(side, name, owners) or why) if why.endswith("call order") else why
    return out


def _confirmed_between(out: Pairing, ref, port, ref_kinds, port_kinds, amb_r: dict, amb_p: dict, group: dict,
                       rtol: float) -> None:
    """An output called between two sub-models (a torch ``F.tanh`` at the end of ``G.forward``, named without
    its module) pairs with the one output left unpaired on the other side that has its kind and shape and is
    equal to it at the probe; the others stay out (``amb_r``/``amb_p``: their reasons)."""
    used_r, used_p = {a for a, _ in out.pairs}, {b for _, b in out.pairs}
    for side, amb, names, kinds, other, okinds, oused in (("reference", amb_r, ref, ref_kinds, port, port_kinds, used_p),
                                                          ("port", amb_p, port, port_kinds, ref, ref_kinds, used_r)):
        for x in list(amb):
            hits = [y for y in other if y not in oused and y not in (amb_p if side == "reference" else amb_r)
                    and _compatible(_kind(kinds, x), _kind(okinds, y)) and same_output(names[x], other[y], rtol)]
            if len(hits) == 1:
                pair = (x, hits[0]) if side == "reference" else (hits[0], x)
                out.pairs.append(pair)
                out.confirmed.add(pair)
                oused.add(hits[0])
                group[pair[0]] = group[("port", pair[1])] = group.get(pair[0]) or group.get(("port", pair[1]))
                del amb[x]


def _cuts(out: Pairing, ref: Mapping, port: Mapping, index_r: dict, group: dict) -> None:
    """A pair of different shapes whose next pair (call order, same sub-model) has equal shapes is one layer cut
    at two places (a crop or pad inside one side's layer: ``ConvTranspose2d`` then a crop in the module around
    it, against TF's ``conv2d_transpose`` with its output shape) when the next pair is equal at the probe: not
    compared. Where the outputs before it (of equal shapes) already differ at the probe, it cannot tell a cut from a
    padding difference whose shape a later layer restores: not compared either, with that reason. Otherwise
    (the next shapes differ too, or it differs at the probe from agreeing inputs) it pairs and is reported."""
    def near(a, later: bool):
        same = [p for p in out.pairs if (index_r[p[0]] > index_r[a] if later else index_r[p[0]] < index_r[a])
                and group.get(p[0]) == group.get(a)]
        return (min if later else max)(same, key=lambda p: index_r[p[0]], default=None)

    for a, b in list(out.pairs):
        nxt, prev = near(a, True), near(a, False)
        if np.shape(ref[a]) == np.shape(port[b]) or nxt is None or np.shape(ref[nxt[0]]) != np.shape(port[nxt[1]]):
            continue
        shapes = f"({list(np.shape(ref[a]))} vs {list(np.shape(port[b]))})"
        if nxt in out.confirmed:
            why = f"the next outputs {nxt[0]} / {nxt[1]} agree at the probe: a crop or pad inside one side's layer"
        elif prev is not None and prev not in out.confirmed and np.shape(ref[prev[0]]) == np.shape(port[prev[1]]):
            why = (f"the next outputs {nxt[0]} / {nxt[1]} have equal shapes, and the outputs before ({prev[0]} / "
                   f"{prev[1]}) already differ at the probe: a cut or a shape difference, the probe cannot tell")
        else:
            continue
        mark = ":" if nxt in out.confirmed else "?"
        out.reasons[f"reference {a}"] = f"cut at another place than port {b} {shapes}{mark} {why}"
        out.reasons[f"port {b}"] = f"cut at another place than reference {a}{mark} (see there)"
    dropped = {x.split(" ", 1)[1] for x in out.reasons if x.startswith("reference ")}
    out.reshaped = [r for r in out.reshaped if r[0] not in dropped]
    out.pairs = [p for p in out.pairs if p[0] not in dropped]


def _reason(kind: str, shape: tuple, okinds: Sequence[str], oshapes: Sequence[tuple], other: str) -> str:
    if kind != "any" and not any(_compatible(kind, ok) for ok in okinds):
        return f"the {other} records no {kind} output"
    if not any(_compatible(kind, ok) and s == shape for ok, s in zip(okinds, oshapes)):
        return f"the {other} has no {kind} output of shape {list(shape)}"
    return f"the {other}'s {kind} outputs of shape {list(shape)} pair with others in call order"




def unpaired_notes(pairing: Pairing, ref: Mapping, port: Mapping, ref_kinds=None, port_kinds=None) -> list[str]:
    """One note listing the outputs left unpaired with their reasons; a note when nothing pairs at all."""
    notes = []
    if not pairing.pairs and (ref or port):
        kr = ", ".join(f"{a} ({_kind(ref_kinds, a)} {list(np.shape(ref[a]))})" for a in list(ref)[:8])
        kp = ", ".join(f"{b} ({_kind(port_kinds, b)} {list(np.shape(port[b]))})" for b in list(port)[:8])
        notes.append(f"no layer output compared: no reference output has a port output of the same kind and shape "
                     f"in call order (reference: {kr or 'none recorded'}; port: {kp or 'none recorded'}); pair them "
                     "in the mapping file's \"forward\" list")
    elif pairing.reasons:
        parts = [f"{name} ({why})" for name, why in pairing.reasons.items()]
        notes.append("layer outputs not compared: " + "; ".join(parts))
    if pairing.reshaped:
        notes.append(reshaped_note(pairing.reshaped, ref, port))
    notes.extend(pairing.notes)
    return notes


_SHAPE_CAUSE = {"conv": "padding or stride differ", "pool": "pool size, stride or padding differ",
                "linear": "the widths differ", "embedding": "the embedding widths differ", "rnn": "the units differ"}


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def reshaped_note(reshaped: Sequence, ref: Mapping, port: Mapping) -> str:
    """The note for outputs paired in call order whose shapes differ: the first named with its likely
    cause, the later ones listed (a shape difference after the first may come from the layers before)."""
    (a, b, kind, k), rest = reshaped[0], reshaped[1:]
    cause = _SHAPE_CAUSE.get(kind)
    note = (f"layer output shapes differ: reference {a} {list(np.shape(ref[a]))} vs port {b} {list(np.shape(port[b]))}: "
            f"the {_ordinal(k)} {kind} outputs differ in shape" + (f" ({cause}, or the layers before)" if cause else "")
            + "; paired in call order (the k-th of a kind with the k-th) and reported as a shape difference there")
    if rest:
        shown = ", ".join(f"{x} {list(np.shape(ref[x]))} vs {y} {list(np.shape(port[y]))}" for x, y, _, _ in rest[:6])
        more = f" and {len(rest) - 6} more" if len(rest) > 6 else ""
        note += f"; after it, {len(rest)} more pairs differ in shape (possibly from it): {shown}{more}"
    return note


def apply_forward_edits(pairs: Sequence[tuple[str, str]], edits: Sequence, ref_names: Sequence[str],
                        port_names: Sequence[str], where: str = "mapping") -> list[tuple[str, str]]:
    """The automatic ``pairs`` after the user's ``edits`` (the mapping file's ``"forward"`` list), each
    one of :data:`FORWARD_EDITS`. A pair named re-pairs both names (any automatic pair of either is
    replaced); a name dropped is compared on neither side. Unknown names or forms: a ParityError
    that lists the accepted forms and both sides' output names."""
    ref_names, port_names = list(ref_names), list(port_names)

    def bad(msg: str) -> ParityError:
        return ParityError(f"{where}: {msg}; each \"forward\" entry is " + " or ".join(FORWARD_EDITS)
                           + f"; reference outputs: {', '.join(ref_names) or 'none'}; port outputs: "
                           f"{', '.join(port_names) or 'none'}")

    out = [tuple(p) for p in pairs]
    for e in edits:
        if isinstance(e, (list, tuple)) and len(e) == 2:
            e = {"reference": e[0], "port": e[1]}
        if not isinstance(e, Mapping):
            raise bad(f"{e!r} is not an object")
        if set(e) == {"drop"}:
            name = str(e["drop"])
            if name not in ref_names and name not in port_names:
                raise bad(f"no layer output {name!r} to drop")
            out = [(a, b) for a, b in out if name not in (a, b)]
        elif set(e) == {"reference", "port"}:
            a, b = str(e["reference"]), str(e["port"])
            missing = [f"reference {a!r}"] * (a not in ref_names) + [f"port {b!r}"] * (b not in port_names)
            if missing:
                raise bad(f"no layer output {' or '.join(missing)}")
            out = [(x, y) for x, y in out if x != a and y != b] + [(a, b)]
        else:
            raise bad(f"unknown entry {dict(e)!r}")
    order = {a: i for i, a in enumerate(ref_names)}
    return sorted(out, key=lambda p: order[p[0]])


def kinds_of(prog) -> dict[str, str]:
    """A captured program's output kinds: ``forward_kinds()``, else what its recording kept (the
    torch capture's ``_forward_kinds``, the Keras capture's recording ``kinds``); empty when none."""
    fn = getattr(prog, "forward_kinds", None)
    if callable(fn):
        return dict(fn())
    kinds = getattr(prog, "_forward_kinds", None)
    if kinds is None:
        kinds = getattr(getattr(prog, "_rec", None), "kinds", None)
    return dict(kinds or {})


def recording_notes(prog) -> list[str]:
    """Notes a capture's recording kept that its ``notes()`` may not give yet (the Keras recording's
    undriven dropouts)."""
    return list(getattr(getattr(prog, "_rec", None), "notes", None) or [])
