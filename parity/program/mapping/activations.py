"""Pair two programs' layer outputs: equal values first (a probe forward from the same weights), then
order and shape between those anchors (numpy only)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

__all__ = ["same_values", "match_activations"]


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
