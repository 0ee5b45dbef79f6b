"""The automatic variable mapping: by canonical shape and kind, in order, and never a guess (numpy only).

Two variables pair when they have the same canonical shape and a compatible kind. A class of such
variables with one member on each side pairs at once. A class with several members (two Dense 64x64
layers) is decided by evidence only: the layer each variable belongs to (a bias follows its layer's
kernel), else the probe forward from the mapped weights (the ``score`` the caller gives: how many layer
outputs agree under a pairing; exactly one best pairing decides, and a note prints it), else the names
and the order (:mod:`.evidence`: each printed in a note, order only where the probe agrees and no swap agrees
better). Kinds pair exactly first (a conv bias is not a BatchNorm beta), compatible kinds only when exact
ones cannot pair all. Anything left undecided stops, in one line naming both lists.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace

import numpy as np

from parity.errors import ParityError

from .evidence import call_ordered, model_pick, name_pick
from .model import Entry, Mapping_
from .ops import canon_shape, to_canonical_ops
from .recurrent import recurrent_entries

__all__ = ["auto_map", "AmbiguousMapping"]

#: kinds that may pair with each other (besides equal kinds and "other")
_COMPATIBLE = {frozenset({"bias", "bn_beta"}), frozenset({"bias", "ln_beta"}), frozenset({"bn_gamma", "ln_gamma"}),
               frozenset({"bn_beta", "ln_beta"})}  # (TF1's layer_norm names its offset "beta": kind bn_beta)
#: up to this many pairings, all are tried on the probe forward; beyond, swaps in one group at a time (:func:`_local`)
MAX_CANDIDATES = 24


class AmbiguousMapping(ParityError):
    """The automatic mapping cannot decide; ``draft`` is the mapping in order, for the user to edit."""

    def __init__(self, message: str, draft: Mapping_ | None = None):
        super().__init__(message)
        self.draft = draft


def _compatible(a: str, b: str, exact: bool = False) -> bool:
    if exact and {a, b} & {"bn_mean", "bn_var"}:  # a BatchNorm statistic: its own kind (else a later, looser pass)
        return a == b
    return a == b or "other" in (a, b) or (not exact and frozenset({a, b}) in _COMPATIBLE)


def _describe(specs) -> str:
    return ", ".join(f"{s.name} {list(s.shape)}" for s in specs)


def _layer(spec) -> str:
    layer = spec.layer if spec.layer and spec.layer != spec.name else re.split(r"[./](?=[^./]*$)", spec.name)[0]
    return layer.strip("/.")


def auto_map(ref_specs, ref_framework: str, port_specs, port_framework: str, *, ref_flatten=None, port_flatten=None,
             reference_file: str = "reference", port_file: str = "port", score=None) -> Mapping_:
    """Pair the two programs' variables by canonical shape + kind; several candidates are decided by evidence.

    ``score(mapping) -> number | None``: how well the probe forward agrees under a candidate mapping
    (None: no probe). Without it, only the layers can decide between same-shape candidates.

    Raises:
        ParityError: (one line) a class has different counts on the two sides, a trainable variable
            (or BatchNorm statistic) has no partner, or same-shape candidates stay undecided
            (:class:`AmbiguousMapping`, with the draft mapping in order); the message lists both sides.
    """
    rec, rec_notes, used_r, used_p = recurrent_entries(ref_specs, ref_framework, port_specs, port_framework)
    rest_r = [s for s in ref_specs if s.name not in used_r]
    rest_p = [s for s in port_specs if s.name not in used_p]
    # trainable pairs with trainable, state with state, a kind with the same kind (a conv bias is not a BatchNorm
    # beta); when that cannot pair all, compatible kinds (a hand-made BatchNorm's offset "bias"), then ignore trainable
    strict = None
    for by_trainable, exact in ((True, True), (True, False), (False, True), (False, False)):
        try:
            m, groups = _auto_map(rest_r, ref_framework, rest_p, port_framework, ref_flatten, port_flatten,
                                  reference_file, port_file, by_trainable=by_trainable, exact=exact)
            break
        except ParityError as e:
            strict = strict or e
    else:
        raise strict
    if rec:  # the recurrent layers' pairs, in the reference's order (group indices shift by len(rec))
        order = {s.name: i for i, s in enumerate(ref_specs)}
        groups = [[i + len(rec) for i in g] for g in groups]
        m.params = rec + m.params
        m.notes = rec_notes + m.notes
    if groups:
        _decide(m, groups, ref_specs, port_specs, score)
    if rec:
        m.params.sort(key=lambda e: order.get(e.reference, len(order)))
    return m


def _auto_map(ref_specs, ref_framework, port_specs, port_framework, ref_flatten, port_flatten, reference_file,
              port_file, *, by_trainable: bool, exact: bool = False):
    m = Mapping_(reference_file, port_file)
    ra = [(s, to_canonical_ops(ref_framework, s, ref_flatten)) for s in ref_specs]
    pa = [(s, to_canonical_ops(port_framework, s, port_flatten)) for s in port_specs]
    for flat, side in ((port_flatten, port_framework), (ref_flatten, ref_framework)):
        for name, info in (flat or {}).items():
            if info.get("order") not in ("chw", "hwc"):
                m.notes.append(f"{side}: the input of {name} is a flatten in neither (c, h, w) nor (h, w, c) order: its rows are not permuted (edit the mapping if they must be)")
    rc = [(s, ops, canon_shape(s.shape, ops)) for s, ops in ra]
    pc = [(s, ops, canon_shape(s.shape, ops)) for s, ops in pa]
    used: set[int] = set()
    unresolved: list[str] = []
    groups: dict[tuple, list[int]] = {}  # class -> indices of m.params paired in order among several candidates
    for i, (s, ops, shape) in enumerate(rc):
        # a known kind pairs with the same kind first; only when those cannot pair all, with compatible kinds
        for strict in (True, False):
            same, mine = ([j for j, (t, _, tshape) in enumerate(side) if tshape == shape
                           and (not by_trainable or t.trainable == s.trainable)
                           and (t.kind == s.kind if strict else _compatible(s.kind, t.kind, exact))] for side in (pc, rc))
            if s.kind != "other" and same and len(same) == len(mine):
                break
        free = [j for j in same if j not in used]
        if len(same) != len(mine) or not free:
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
        if len(same) > 1:
            groups.setdefault((shape, tuple(mine), tuple(same)), []).append(len(m.params))
        m.params.append(Entry(s.name, t.name, ops, tops, shape, s.kind if s.kind != "other" else t.kind, s.trainable and t.trainable))
    for j, (t, _, _) in enumerate(pc):
        if j in used:
            continue
        if t.trainable or t.kind in ("bn_mean", "bn_var"):
            unresolved.append(f"port's {t.name} {list(t.shape)} has no partner")
        else:
            m.not_compared.setdefault("port", []).append(t.name)
    if unresolved:
        _todo(m, ref_specs, port_specs, unresolved)
        n_ref, n_port = (sum(int(np.prod(s.shape)) for s in specs if s.trainable) for specs in (ref_specs, port_specs))
        size = f"models of different sizes ({n_ref} vs {n_port} trainable values); " if n_ref != n_port else ""
        raise AmbiguousMapping(
            f"cannot map the variables automatically: {size}unresolved: {'; '.join(unresolved)}. "
            f"Reference ({ref_framework}): {_describe(ref_specs)}. Port ({port_framework}): {_describe(port_specs)}. "
            "Write the pairs in a mapping file (see docs/own-model.md) and pass it with --mapping" + ("; where the two "
            "models differ in architecture (a layer's shape or the number of layers: no mapping pairs those), align "
            "the port's architecture in a copy of it first" if size else ""), m)
    return m, [g for g in groups.values() if len(g) > 1]


def _todo(m: Mapping_, ref_specs, port_specs, unresolved: list[str]) -> None:
    """Make ``m`` a draft to start from: a ``"TODO"`` partner for every variable left without one."""
    paired_r, paired_p = {e.reference for e in m.params}, {e.port for e in m.params}
    for s in ref_specs:
        if s.name not in paired_r and (s.trainable or s.kind in ("bn_mean", "bn_var")):
            m.params.append(Entry(s.name, "TODO", [], [], (), s.kind, s.trainable, shape_given=False))
    for t in port_specs:
        if t.name not in paired_p and (t.trainable or t.kind in ("bn_mean", "bn_var")):
            m.params.append(Entry("TODO", t.name, [], [], (), t.kind, t.trainable, shape_given=False))
    m.notes.append("draft written by a mapping that failed: replace each \"TODO\" with the partner variable "
                   "(and its layout ops, see docs/own-model.md); unresolved: " + "; ".join(unresolved))


def _tie(m: Mapping_, groups: list[list[int]], layers_r: dict, layers_p: dict, choice: dict) -> list[list[int]]:
    """Decide the groups whose reference layers all have a known port layer (a bias follows its kernel);
    ``choice``: group index -> {entry index: port name}. Returns the groups still open."""
    fixed = {i for g in choice.values() for i in g}
    known: dict[str, str] = {}
    for i, e in enumerate(m.params):
        if not any(i in g for g in groups) or i in fixed:
            known.setdefault(layers_r[e.reference], layers_p[choice_port(choice, i, e)])
    open_ = []
    changed = True
    pending = [k for k in range(len(groups)) if k not in choice]
    while changed:
        changed = False
        for k in list(pending):
            g = groups[k]
            ports = [m.params[i].port for i in g]
            pick = {}
            for i in g:
                want = known.get(layers_r[m.params[i].reference])
                hits = [p for p in ports if layers_p[p] == want]
                if len(hits) != 1:
                    break
                pick[i] = hits[0]
            if len(pick) == len(g) and len(set(pick.values())) == len(g):
                choice[k] = pick
                pending.remove(k)
                for i, p in pick.items():
                    known.setdefault(layers_r[m.params[i].reference], layers_p[p])
                changed = True
    open_ = [groups[k] for k in pending]
    return open_


def choice_port(choice: dict, i: int, e: Entry) -> str:
    for pick in choice.values():
        if i in pick:
            return pick[i]
    return e.port


def _candidates(m, groups, layers_r, layers_p, choice, out):
    open_ = [k for k in range(len(groups)) if k not in choice]
    _tie(m, groups, layers_r, layers_p, choice)
    open_ = [k for k in range(len(groups)) if k not in choice]
    if not open_:
        out.append(dict(choice))
        return
    k = open_[0]
    g = groups[k]
    ports = [m.params[i].port for i in g]
    for perm in itertools.permutations(ports):
        if len(out) > MAX_CANDIDATES:
            return
        _candidates(m, groups, layers_r, layers_p, {**choice, k: dict(zip(g, perm))}, out)


def _local(m, groups, layers_r, layers_p, evaluate) -> tuple[list, list]:
    """Too many pairings to try them all: from the pairing in order, try every swap of two pairs in one group
    at a time (the groups tied to it follow), keep a strictly better one, repeat until none improves. Returns
    the pairings tried and their scores (the caller keeps the best only when it is the one best)."""
    primary, choice = [], {}
    while True:  # the groups the others follow (a BN gamma group: its beta, mean and variance follow)
        _tie(m, groups, layers_r, layers_p, choice)
        open_ = [k for k in range(len(groups)) if k not in choice]
        if not open_:
            break
        primary.append(open_[0])
        choice[open_[0]] = {i: m.params[i].port for i in groups[open_[0]]}

    def build(picks: dict) -> dict:
        c = dict(picks)
        _tie(m, groups, layers_r, layers_p, c)
        return c

    current = {k: choice[k] for k in primary}
    tried: dict = {}

    def run(picks: dict) -> float | None:
        c = build(picks)
        key = tuple(sorted((i, p) for pick in c.values() for i, p in pick.items()))
        if key not in tried:
            tried[key] = (c, evaluate(c))
        return tried[key][1]

    for _ in range(len(primary) + 1):
        improved = False
        for k in primary:
            g = groups[k]
            base = run(current)
            for a, b in itertools.combinations(range(len(g)), 2):  # every swap of two pairs
                if len(tried) > 4 * MAX_CANDIDATES:
                    break
                pick = dict(current[k])
                pick[g[a]], pick[g[b]] = pick[g[b]], pick[g[a]]
                got = run({**current, k: pick})
                if got is not None and base is not None and got > base:
                    current, base, improved = {**current, k: pick}, got, True
        if not improved:
            break
    return [c for c, _ in tried.values()], [sc for _, sc in tried.values()]


def _apply(m: Mapping_, choice: dict, by_port: dict) -> Mapping_:
    out = Mapping_(m.reference_file, m.port_file, not_compared=dict(m.not_compared), notes=list(m.notes))
    for i, e in enumerate(m.params):
        p = choice_port(choice, i, e)
        out.params.append(replace(e, port=p, port_ops=by_port[p].port_ops))
    return out


def _listed(pairs: list[str], most: int = 8) -> str:
    return ", ".join(pairs[:most]) + (f" and {len(pairs) - most} more (see the table)" if len(pairs) > most else "")


def _key(name: str) -> str:
    """A variable's name with the frameworks' spellings unified (``fc1.weight`` = ``fc1/kernel``)."""
    parts = [p for p in re.split(r"[./]", name.lower()) if p]
    return "/".join(parts[:-1] + [{"weight": "kernel"}.get(parts[-1], parts[-1])]) if parts else ""


def _by_names(m: Mapping_, cands: list[dict], undecided, by_port) -> dict | None:
    """The one candidate under which every undecided pair has the same name on both sides, else None."""
    hits = [c for c in cands if all(_key(m.params[i].reference) == _key(choice_port(c, i, m.params[i]))
                                    for g in undecided for i in g)]
    return hits[0] if len(hits) == 1 else None


def _evidence(m: Mapping_, groups, layers_r, layers_p, score, by_port):
    """The probe cannot decide: pair each group by its names, else in order when both sides create the group's
    layers in the order they call them and the probe agrees under that pairing (>0) at least as well as under
    every swap of two pairs tried. Returns (choice, note) or None (nothing decides: the caller stops)."""
    choice, how, primary = {}, [], []
    calls = getattr(score, "calls", lambda: None)() if score is not None else None
    while True:
        _tie(m, groups, layers_r, layers_p, choice)
        open_ = [k for k in range(len(groups)) if k not in choice]
        if not open_:
            break
        k = open_[0]
        g = groups[k]
        refs, ports = [m.params[i].reference for i in g], [m.params[i].port for i in g]
        named = name_pick(refs, ports) or model_pick(refs, ports)
        if named is not None:
            choice[k] = {i: named[m.params[i].reference] for i in g}
            how.append(f"by their names: {_listed([f'{r} -> {named[r]}' for r in refs], 4)}")
        elif calls and call_ordered([layers_r[r] for r in refs], calls[0]) and call_ordered(
                [layers_p[p] for p in ports], calls[1]):
            choice[k] = {i: m.params[i].port for i in g}
            how.append(f"in order (created in call order on both sides): {_listed([f'{r} -> {p}' for r, p in zip(refs, ports)], 4)}")
        else:
            return None
        primary.append(k)
    base = score(_apply(m, choice, by_port)) if score is not None else None
    ordered = any(h.startswith("in order") for h in how)
    if ordered and (base is None or base <= 0):
        return None
    tested = 0
    for k in primary:  # the probe must not refute it: no swap of two pairs agrees better
        for a, b in itertools.combinations(groups[k], 2):
            if tested >= 4 * MAX_CANDIDATES or base is None:
                break
            c = {kk: dict(v) for kk, v in choice.items() if kk in primary}
            c[k][a], c[k][b] = c[k][b], c[k][a]
            _tie(m, groups, layers_r, layers_p, c)
            got, tested = score(_apply(m, c, by_port)), tested + 1
            if got is not None and got > base:
                return None
    probe = (f"the probe forward agrees on {base:g} outputs under it, no better under any of {tested} swaps tried"
             if base is not None else "no probe forward")
    return choice, f"same shape and kind, the probe forward does not decide; paired {'; '.join(how)} ({probe})"


def _decide(m: Mapping_, groups, ref_specs, port_specs, score) -> None:
    layers_r = {s.name: _layer(s) for s in ref_specs}
    layers_p = {s.name: _layer(s) for s in port_specs}
    by_port = {e.port: e for e in m.params}
    cands: list[dict] = []
    _candidates(m, groups, layers_r, layers_p, {}, cands)
    undecided = [g for g in groups if len({m.params[i].port for i in g}) > 1]

    def lists() -> str:
        parts = []
        for g in undecided:
            ref = ", ".join(m.params[i].reference for i in g)
            prt = ", ".join(m.params[i].port for i in g)
            parts.append(f"reference {ref} and port {prt} ({'x'.join(map(str, m.params[g[0]].shape)) or 'scalar'}, {m.params[g[0]].kind})")
        return "; ".join(parts)

    if len(cands) == 1:
        chosen = cands[0]
    else:
        if score is not None and len(cands) > MAX_CANDIDATES:
            cands, scores = _local(m, groups, layers_r, layers_p, lambda c: score(_apply(m, c, by_port)))
        else:
            scores = [score(_apply(m, c, by_port)) if score is not None else None for c in cands]
        best = max((s for s in scores if s is not None), default=None)
        top = [c for c, s in zip(cands, scores) if s is not None and s == best]
        named = _by_names(m, top if best is not None and best > 0 else cands, undecided, by_port)
        if named is not None and (best is None or best <= 0 or len(top) > 1):
            decided = _apply(m, named, by_port)
            pairs = _listed([f"{decided.params[i].reference} -> {decided.params[i].port}" for g in undecided for i in g])
            m.notes.append("same shape and kind, paired by their names (the probe forward " +
                           ("cannot tell them apart" if best is not None and best > 0 else "does not decide") + f"): {pairs}")
            m.params = decided.params
            return
        if best is None or len(top) != 1 or best <= 0:
            found = _evidence(m, groups, layers_r, layers_p, score, by_port)
            if found is not None:
                m.notes.append(found[1])
                m.params = _apply(m, found[0], by_port).params
                return
            why = ("no probe forward to tell them apart" if score is None else
                   "the probe forward agrees equally under several pairings" if len(top) > 1 and best > 0 else
                   "the probe forward agrees under none of the pairings")
            m.notes.append(f"draft written by a mapping that could not decide: check these pairs (made in order): {lists()}")
            raise AmbiguousMapping(
                f"cannot map the variables automatically: same shape and kind, nothing decides which pairs with which "
                f"({why}): {lists()}. Write the pairs in a mapping file (see docs/own-model.md) and pass it with --mapping", m)
        chosen = top[0]
        second = max((s for s in scores if s is not None and s != best), default=0)
        decided = _apply(m, chosen, by_port)
        pairs = _listed([f"{decided.params[i].reference} -> {decided.params[i].port}" for g in undecided for i in g])
        m.notes.append(f"same shape and kind, paired by the probe forward from the mapped weights ({best:g} of its "
                       f"layer outputs and loss agree under this pairing, at most {second:g} under any of the "
                       f"{len(cands) - 1} other pairing(s) tried): {pairs}")
    decided = _apply(m, chosen, by_port)
    m.params = decided.params
