"""Evidence that pairs same-shape variables when the probe forward cannot tell them apart (numpy only).

Names: the variables' names split into tokens on ``/ . _`` (digits kept: ``Layer_0/w_i`` ~ ``Layer_0.w_i``,
``weight`` = ``kernel``); a reference variable pairs with the one port variable sharing its longest token
suffix, when that port variable's best match is the same reference variable and the suffix holds a name
token (not only digits and the leaf ``kernel``/``bias``). Sub-models: a group whose variables lie one in each
of several sub-models (a GAN's ``generator/...`` and ``discriminator/...`` against ``G.`` and ``D.``) pairs
by the sub-models' names, when each first name token is the start of exactly one on the other side. Order: on both sides the variables were created in
the order their layers are called (the k-th with the k-th is then the call order on both sides).
"""

from __future__ import annotations

import re

__all__ = ["tokens", "name_pick", "model_pick", "call_ordered"]

_LEAVES = {"kernel", "bias"}


def tokens(name: str) -> list[str]:
    """``Model/RNN/Layer_0/w_i`` -> ``['model', 'rnn', 'layer', '0', 'w', 'i']`` (``weight`` spelt ``kernel``)."""
    parts = [p for p in re.split(r"[/._:]+", name.lower()) if p]
    if parts and parts[-1] == "weight":
        parts[-1] = "kernel"
    return parts


def _suffix(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return a[len(a) - n:]


def name_pick(refs: list[str], ports: list[str]) -> dict[str, str] | None:
    """``{reference: port}`` when the names pair every reference with one port variable both ways, else None."""
    rt, pt = [tokens(r) for r in refs], [tokens(p) for p in ports]
    n = [[len(_suffix(a, b)) for b in pt] for a in rt]
    pick: dict[str, str] = {}
    for i, row in enumerate(n):
        best = max(row, default=0)
        j = row.index(best)
        col = [n[k][j] for k in range(len(refs))]
        if best == 0 or row.count(best) != 1 or col.count(best) != 1:
            return None
        if not any(not t.isdigit() and t not in _LEAVES for t in _suffix(rt[i], pt[j])):
            return None
        pick[refs[i]] = ports[j]
    return pick if len(set(pick.values())) == len(refs) else None


def model_pick(refs: list[str], ports: list[str]) -> dict[str, str] | None:
    """``{reference: port}`` when each variable lies in a sub-model of its own and the sub-models' names pair
    both ways (``generator`` ~ ``G``, ``discriminator`` ~ ``D``: one starts the other), else None."""
    roots_r, roots_p = [tokens(r)[0] for r in refs], [tokens(p)[0] for p in ports]
    if len(set(roots_r)) != len(refs) or len(set(roots_p)) != len(ports) or len(refs) < 2:
        return None
    pick: dict[str, str] = {}
    for r, a in zip(refs, roots_r):
        hits = [p for p, b in zip(ports, roots_p) if a.startswith(b) or b.startswith(a)]
        back = [x for x in roots_r if hits and (x.startswith(tokens(hits[0])[0]) or tokens(hits[0])[0].startswith(x))]
        if len(hits) != 1 or len(back) != 1:
            return None
        pick[r] = hits[0]
    return pick if len(set(pick.values())) == len(refs) else None


def call_ordered(layers: list[str], calls: list[str]) -> bool:
    """Whether ``layers`` (one per variable, in creation order) are each called (an output named by the layer)
    in that order, one variable per layer (two variables of one layer: the call order cannot order them)."""
    where = []
    for layer in layers:
        hits = [k for k, c in enumerate(calls) if c == layer or c.startswith(layer + "/") or c.startswith(layer + ".")]
        if not hits:
            return False
        where.append(hits[0])
    return all(a < b for a, b in zip(where, where[1:]))
