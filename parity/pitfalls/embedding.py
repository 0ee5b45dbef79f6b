"""Signatures of an embedding table's pitfalls: a row frozen by ``padding_idx`` on one side, and global-norm
clipping whose norm counts an ``IndexedSlices``' repeated rows once per occurrence (TF) or sums them first
(torch's dense gradient); cases in ``parity/cases/catalog/pitfalls_embed.py``."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, Precondition, close, constant_ratio, pitfall
from parity.pitfalls.requires import PROCESSED_GRADIENTS

__all__ = ["PITFALLS", "id_counts"]


def _check_padding_row(c: Context):
    """A rank-2 gradient whose rows agree but one (or a few), all zero on one side and not on the other."""
    for n, ga, gb in c.diverging("gradients", ndim=2):
        bad = [i for i in range(ga.shape[0]) if not close(ga[i], gb[i], c.tol)]
        if not bad or len(bad) > max(1, ga.shape[0] // 4):
            continue
        for side, gz, gk in (("the port", gb, ga), ("the reference", ga, gb)):
            if all(not np.any(gz[i]) and np.any(gk[i]) for i in bad):
                rows = ", ".join(str(i) for i in bad)
                return 0.95, (f"{n}: every row of the gradient agrees but row {rows}, all zero in {side} and not in the other: "
                              f"{side} freezes that row (nn.Embedding(padding_idx={bad[0]})); TF trains every row")
    return None


def id_counts(c: Context, rows: int):
    """How often each of ``rows`` ids occurs in an integer-valued input of the step (None where none holds ids)."""
    for v in c.at(c.a, "inputs").values():
        v = np.asarray(v, float)
        if v.size and np.all(v == np.round(v)) and v.min() >= 0 and v.max() < rows:
            return np.bincount(v.astype(int).ravel(), minlength=rows)
    return None


def _global_norm(fact):
    """The threshold of a ``"global norm 5"`` clip fact; None for another kind or an unread threshold."""
    head, _, num = str(fact or "").rpartition(" ")
    try:
        return float(num) if head == "global norm" else None
    except ValueError:
        return None


def _threshold(c: Context):
    """(global-norm clip threshold, where it was read): both ports' settings alike, else the programs' facts:
    both state it alike, or one states it and the other clips by a hand-written rule the facts cannot read
    (``unknown``). Taken as the same threshold, it is tested below: the dense side's factor must be c / its dense
    norm (a hand-written clip there with another threshold is no match), the other side's norm c / its factor
    must lie in the per-occurrence range. (None, "") otherwise."""
    clips = [(c.settings(t).get("clip") or {}).get("value") for t in (c.a, c.b)]
    if clips[0] is not None and clips[0] == clips[1]:
        return float(clips[0]), "the ports' settings"
    facts = c.fact("clip")
    values = [_global_norm(f) for f in facts]
    if values[0] is not None and values[0] == values[1]:
        return values[0], "both programs' clip facts"
    for known, other, label in ((values[0], facts[1], "port"), (values[1], facts[0], "reference")):
        if known is not None and str(other) == "unknown":
            return known, f"the other program's clip fact; the {label}'s clip is hand-written (threshold not read)"
    return None, ""


def _check_sparse_norm(c: Context):
    """Raw gradients agree; every processed gradient is the raw one times one factor per side (a global clip on
    both), the clip values the ports report are equal; one side's factor is c / (the dense global norm), the
    other's norm is another, which an embedding's rows counted per occurrence explain: its table part lies
    between sum over rows |g_row|^2 / count and sum |g_row|^2 (Cauchy-Schwarz), and ids repeat."""
    if c.semantic("gradients"):
        return None
    cv, said = _threshold(c)
    if cv is None:
        return None
    g, pa, pb = c.at(c.a, "gradients"), c.at(c.a, "processed_gradients"), c.at(c.b, "processed_gradients")
    names = [n for n in g if n in pa and n in pb]
    if not names:
        return None
    flat = lambda d: np.concatenate([np.asarray(d[n], float).ravel() for n in names])  # noqa: E731
    fa, fb = constant_ratio(flat(pa), flat(g), c.tol), constant_ratio(flat(pb), flat(g), c.tol)
    if fa is None or fb is None or abs(fa - fb) <= 10 * c.tol * max(fa, fb):
        return None
    dense = float(np.sqrt(sum(np.sum(np.asarray(g[n], float) ** 2) for n in names)))
    for side, f_dense, f_other in (("the port", fb, fa), ("the reference", fa, fb)):
        # torch's clip_grad_norm_ divides by norm + 1e-6: its factor lies in [c / (norm + 1e-6), c / norm]
        if not (cv / (dense + 1e-6) * (1 - 10 * c.tol) <= f_dense <= cv / dense * (1 + 10 * c.tol)):
            continue
        other = cv / f_other
        for n in names:
            gt = np.asarray(g[n], float)
            counts = id_counts(c, gt.shape[0]) if gt.ndim == 2 else None
            if counts is None or counts.max() < 2:
                continue
            if not np.all(gt[counts == 0] == 0):
                continue  # not the looked-up table: a table's gradient is zero on the rows no id looks up
            rest = dense**2 - np.sum(gt**2)
            table = other**2 - rest
            hit = counts > 0
            low = float(np.sum(np.sum(gt[hit] ** 2, axis=1) / counts[hit]))
            if low * (1 - 10 * c.tol) <= table and abs(table - np.sum(gt**2)) > 10 * c.tol * np.sum(gt**2):
                return 0.9, (f"raw gradients agree; every processed gradient is scaled by one factor per side, {fa:.6g} vs {fb:.6g}; "
                             f"{side}'s is c / the dense global norm (c = {cv:g} from {said}: c / {dense:.6g}; that side's own "
                             f"threshold recovered from its factor: {f_dense * dense:.6g}), the other's norm is {other:.6g}: {n}'s ids repeat "
                             f"(up to {counts.max()}x) and its part of that norm ({np.sqrt(table):.6g}) is the rows counted per occurrence "
                             "(tf.clip_by_global_norm over IndexedSlices), not the dense rows' norm")
    return None


IDS = Precondition("an embedding-like table: a rank-2 gradient and an integer-valued input indexing its rows",
                   lambda c: any(np.ndim(v) == 2 and id_counts(c, np.shape(v)[0]) is not None for v in c.at(c.a, "gradients").values()))

PITFALLS = [
    pitfall("embedding-padding-idx", "nn.Embedding(padding_idx=...) freezes a row TF trains", "embedding", "P34", ["gradients"],
            "a rank-2 gradient agrees in every row but one, which is all zero on one side and not on the other",
            _check_padding_row,
            explanation="nn.Embedding(padding_idx=i) zeroes row i's gradient (and initialises it to zeros): the row never trains. "
                        "TF's embedding_lookup / Keras Embedding(mask_zero=True) still train row 0 (mask_zero only masks downstream).",
            tf="tf.nn.embedding_lookup(E, ids): dE[i] = sum of the gradients of the rows looked up as i (row 0 included)",
            torch="nn.Embedding(V, D, padding_idx=0): dE[0] = 0 always",
            fix="Leave padding_idx unset where the reference trains the row (or mask the padding positions in the loss on both sides)."),
    pitfall("clip-norm-sparse-rows", "Global-norm clipping over an embedding's IndexedSlices (repeated ids counted per occurrence)",
            "clipping", "P18", ["processed_gradients"],
            "raw gradients agree; each side scales every gradient by one factor; one is c / the dense global norm, the other's norm "
            "is the embedding's rows counted once per occurrence (ids repeat)",
            _check_sparse_norm, requires=[PROCESSED_GRADIENTS, IDS],
            explanation="tf.clip_by_global_norm (and tf.global_norm) square the values of an IndexedSlices gradient as they are: an id "
                        "looked up k times contributes k rows, sum_k |g_k|^2, not |sum_k g_k|^2 as the dense gradient torch's "
                        "clip_grad_norm_ sees. The global norm differs, so every clipped gradient differs by one uniform factor.",
            tf="norm^2 = sum over occurrences |g_occ|^2 (IndexedSlices values) + dense tensors' |g|^2",
            torch="clip_grad_norm_: norm^2 = sum over rows |sum_occ g_occ|^2 + ...;  g *= c / (norm + 1e-6)",
            fix="Compute TF's norm from the looked-up rows' own gradient (retain_grad on the embedding output) and scale by c / max(norm, c)."),
]
