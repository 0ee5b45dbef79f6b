"""Which layer each layer output belongs to, and the layer pairs the variable mapping makes (numpy only):
what :func:`parity.program.outputs.pair_outputs` pairs by, beside kind, shape and call order."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from parity.comparison.propagate import _CALL, _UNIQUE, owner_of

__all__ = ["Owners", "owners_from", "owner_of", "owner_rule", "owned_reason"]


@dataclass
class Owners:
    """Each side's layers (the ``layer`` of its variables) and the layer pairs the variable mapping makes
    (a pair of variables pairs their layers). :func:`owners_from` builds it from a mapping."""

    reference: set = field(default_factory=set)
    port: set = field(default_factory=set)
    links: set = field(default_factory=set)  # (reference layer, port layer)


def _spec_layer(spec) -> str:
    layer = spec.layer if spec.layer and spec.layer != spec.name else re.split(r"[./](?=[^./]*$)", spec.name)[0]
    return layer.strip("/.")


def owners_from(m, ref_specs, port_specs) -> Owners:
    """The layers of both sides' variables and the pairs the mapping ``m`` (its ``params``) makes of them."""
    lr = {s.name: _spec_layer(s) for s in ref_specs}
    lp = {s.name: _spec_layer(s) for s in port_specs}
    links = {(lr[e.reference], lp[e.port]) for e in getattr(m, "params", ()) if e.reference in lr and e.port in lp}
    return Owners(set(lr.values()) - {""}, set(lp.values()) - {""}, links)


def _top(name: str) -> str:
    return re.split(r"[/.]", _UNIQUE.sub("", _CALL.sub("", name)) + "/", maxsplit=1)[0]


def _models(owners: Owners) -> dict | None:
    """``{reference sub-model: port sub-model}`` (the first scope of each layer: ``generator`` ~ ``G``) when the
    mapping's layer pairs join them one to one, there are at least two, and every layer lies inside one (no
    layer is a first scope itself); else None."""
    fwd: dict = {}
    back: dict = {}
    for a, b in owners.links:
        fwd.setdefault(_top(a), set()).add(_top(b))
        back.setdefault(_top(b), set()).add(_top(a))
    if len(fwd) < 2 or any(len(v) != 1 for v in fwd.values()) or any(len(v) != 1 for v in back.values()):
        return None
    if any(_top(x) == x for x in owners.reference | owners.port):
        return None  # a layer at the top (``gc1``, ``conv1``): the first scopes are layers, not sub-models
    return {a: next(iter(v)) for a, v in fwd.items()}


def _groups(names: Sequence[str], layers, tops) -> tuple[list, dict]:
    """Each output's sub-model (its layer's first scope, or its own first scope where that is a sub-model's),
    an output with neither taking its neighbours' when they agree; ``None`` where they do not (the reason)."""
    own = []
    for n in names:
        layer = owner_of(n, layers)
        top = _top(layer) if layer is not None else _top(n)
        own.append(top if top in tops else None)
    out, why = list(own), {}
    for i, g in enumerate(own):
        if g is not None:
            continue
        prev = next((own[k] for k in range(i - 1, -1, -1) if own[k] is not None), None)
        nxt = next((own[k] for k in range(i + 1, len(own)) if own[k] is not None), None)
        near = {x for x in (prev, nxt) if x is not None}
        if len(near) == 1:
            out[i] = near.pop()
        else:
            why[names[i]] = (f"called between the sub-models {prev} and {nxt}: which one it belongs to is not known"
                             if near else "no sub-model to place it in")
    return out, why


def owner_rule(rn: list, pn: list, owners: Owners | None, out):
    """``(allowed(a, b) or None, reference names, port names, left out reference, left out port)``: the
    pairs the variable mapping allows (an output of a layer only with one of the layer it pairs), and the
    names in call order within each sub-model where the mapping joins the sub-models one to one (outputs
    no sub-model can be given to are left out, with the reason)."""
    if owners is None or not owners.links:
        return None, rn, pn, {}, {}, {}
    lr = {a: owner_of(a, owners.reference) for a in rn}
    lp = {b: owner_of(b, owners.port) for b in pn}
    linked_r, linked_p = {a for a, _ in owners.links}, {b for _, b in owners.links}
    models = _models(owners)
    gr = gp = None
    amb_r, amb_p = {}, {}
    if models is not None:
        back = {b: a for a, b in models.items()}
        groups_r, amb_r = _groups(rn, owners.reference, set(models))
        groups_p, amb_p = _groups(pn, owners.port, set(back))
        gr = dict(zip(rn, groups_r))
        gp = {b: back.get(g) for b, g in zip(pn, groups_p)}
        rank: dict = {}
        for g in list(groups_r) + [back.get(x) for x in groups_p]:
            if g is not None:
                rank.setdefault(g, len(rank))
        new_r = sorted((a for a in rn if a not in amb_r), key=lambda a: rank[gr[a]])  # (stable: call order within)
        new_p = sorted((b for b in pn if b not in amb_p), key=lambda b: rank[gp[b]])
        if new_r != [a for a in rn if a not in amb_r] or new_p != [b for b in pn if b not in amb_p]:
            out.notes.append("layer outputs paired in call order within each sub-model ("
                             + ", ".join(f"{a} ~ {b}" for a, b in sorted(models.items())) + ": the variable mapping pairs "
                             "their layers); the two programs call the sub-models in different orders")
        rn, pn = new_r, new_p

    # A layer that is a scope around other layers (TF1's ``Model`` holding ``Model/embedding`` beside
    # ``Model/RNN/Layer_0/...``), or one the mapping pairs with several layers, is a container: the ops
    # under its scope (a hand-written cell's ``Model/Sigmoid``) may belong to any layer inside it, so
    # its outputs are paired in call order as before (corpus 01), not held to its partners.
    def _container(layer, layers, partners) -> bool:
        return (layer is None or len(partners.get(layer, ())) > 1
                or any(x != layer and x.startswith(layer + sep) for x in layers for sep in "/."))

    part_r: dict = {}
    part_p: dict = {}
    for x, y in owners.links:
        part_r.setdefault(x, set()).add(y)
        part_p.setdefault(y, set()).add(x)
    strict_r = {x for x in linked_r if not _container(x, owners.reference, part_r)}
    strict_p = {y for y in linked_p if not _container(y, owners.port, part_p)}

    def allowed(a: str, b: str) -> bool:
        if gr is not None and gr[a] != gp[b]:
            return False
        la, lb = lr[a], lp[b]
        return not (la in strict_r and lb in strict_p and (la, lb) not in owners.links)

    return allowed, rn, pn, amb_r, amb_p, {**(gr or {}), **{("port", b): g for b, g in (gp or {}).items()}}


def owned_reason(side: str, name: str, owners: Owners | None) -> str | None:
    """Why an output of a mapped layer is left out: its partner layer's outputs do not pair with it."""
    if owners is None or not owners.links:
        return None
    mine = owner_of(name, owners.reference if side == "reference" else owners.port)
    partners = sorted({b if side == "reference" else a for a, b in owners.links if (a if side == "reference" else b) == mine})
    if not partners:
        return None
    other = "port" if side == "reference" else "reference"
    return (f"its layer {mine} pairs with the {other}'s {', '.join(partners)} (the variable mapping), and no output "
            f"of that layer pairs with it in call order (kind, shape)")
