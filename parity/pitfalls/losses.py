"""Signatures of the loss pitfalls: reduction and Keras's probability clipping
(``parity/cases/catalog/pitfalls_loss.py``)."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, pitfall, ratio

__all__ = ["PITFALLS"]


def _batch_size(c: Context):
    return next((np.shape(v)[0] for v in c.at(c.a, "inputs").values() if np.ndim(v) >= 1), None)


def _check_loss_reduction(c: Context):
    la, lb = c.at(c.a, "loss").get("loss"), c.at(c.b, "loss").get("loss")
    if la is None or lb is None or abs(float(la)) <= 1e-300:
        return None
    r = float(lb) / float(la)
    big = r if abs(r) >= 1 else 1 / r
    n = _batch_size(c)
    grads_a, grads_b = c.at(c.a, "gradients"), c.at(c.b, "gradients")
    params = c.param_names()
    # the parameters' gradients only: an extra recorded tensor is no evidence either way
    gr = [ratio(grads_b[g], grads_a[g], c.tol) for g in grads_a
          if g in grads_b and np.shape(grads_b[g]) == np.shape(grads_a[g]) and (g in params or not params)]
    # an integer factor, to the run's tolerance, shared by the loss and every gradient
    if big >= 2 - c.tol and abs(big - round(big)) <= 10 * c.tol * big and all(
        x is not None and abs(x - r) <= 10 * c.tol * abs(r) for x in gr
    ):
        why = f" = the batch size {n}" if n == round(big) else ""
        return (0.95 if why else 0.7), (
            f"loss ratio B/A {r:.6g}{why}, and every gradient scaled by the same factor: sum vs mean reduction "
            "(with Adam the parameters barely show it: compare losses and gradients)"
        )
    return None


def _check_prob_clip(c: Context):
    onehots = [np.asarray(v, float) for v in c.at(c.a, "inputs").values()
               if np.ndim(v) == 2 and np.all((np.asarray(v) == 0) | (np.asarray(v) == 1))]
    la, lb = c.at(c.a, "loss").get("loss"), c.at(c.b, "loss").get("loss")
    if la is None or lb is None:
        return None
    for pn, p in c.matching("forward").items():
        if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-5) or p.min() < 0:
            continue
        for y in onehots:
            if y.shape != p.shape:
                continue
            pt = (p * y).sum(1)
            if pt.min() >= 1e-7:
                continue
            clipped = float(np.mean(-np.log(np.clip(pt, 1e-7, 1 - 1e-7))))
            near = lambda v: abs(float(v) - clipped) <= 1e-3 * abs(clipped)  # noqa: E731  (the clip moves the loss by O(1))
            side = "A" if near(la) else "B" if near(lb) else None
            if side:
                return 0.95, (f"true-class probability {pt.min():.3g} < 1e-7 in {pn}; {side}'s loss {clipped:.6g} equals the mean of "
                              "-log(clip(p, 1e-7, 1-1e-7)): Keras probability crossentropy clips (max 16.12 per example)")
    return None


def _check_on_probabilities(c: Context):
    """Probabilities and labels agree; one loss is the cross-entropy -mean(log p_y), the other what a loss on
    probabilities computes: nll_loss(p) = -mean(p_y), or cross_entropy(p) = -mean(log softmax(p)_y) (a second softmax)."""
    la, lb = c.at(c.a, "loss").get("loss"), c.at(c.b, "loss").get("loss")
    if la is None or lb is None:
        return None
    onehots = [np.asarray(v, float) for v in c.at(c.a, "inputs").values()
               if np.ndim(v) == 2 and np.all((np.asarray(v) == 0) | (np.asarray(v) == 1))]
    for pn, p in c.matching("forward").items():
        if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-5) or p.min() < 0:
            continue
        for y in onehots:
            if y.shape != p.shape:
                continue
            pt = (p * y).sum(1)
            if pt.min() <= 0:
                continue
            ref = float(np.mean(-np.log(pt)))
            twice = np.exp(p) / np.exp(p).sum(1, keepdims=True)
            for alt, what in ((float(-np.mean(pt)), "nll_loss on probabilities: -mean(p_y), no log"),
                              (float(np.mean(-np.log((twice * y).sum(1)))), "cross_entropy on probabilities: a second softmax")):
                for side, x, z in (("port", la, lb), ("reference", lb, la)):
                    if abs(float(x) - ref) <= 10 * c.tol * abs(ref) and abs(float(z) - alt) <= 10 * c.tol * max(abs(alt), 1e-12):
                        return 0.95, (f"{pn} and the labels agree; one loss is -mean(log p_y) = {ref:.6g}, the {side}'s is {float(z):.6g} "
                                      f"= {what}: the {side}'s loss takes probabilities where log-probabilities / logits are expected")
    return None


PITFALLS = [
    pitfall("loss-reduction", "Loss reduction sum vs mean", "loss", "P27", ["loss"],
            "loss and every gradient differ by the same integer factor (the batch size)",
            _check_loss_reduction,
            explanation="reduce_sum vs reduce_mean (or F.cross_entropy(reduction='sum')) multiplies loss and gradients by N: an N-times learning rate for SGD, and invisible in Adam's parameters (scale-invariant), so compare losses and gradients.",
            tf="loss = reduce_mean(softmax_cross_entropy_with_logits(labels, logits))", torch="F.cross_entropy(logits, target, reduction='mean')",
            fix="Use the same reduction (mean)."),
    pitfall("keras-prob-clipping", "Keras probability crossentropy clips at 1e-7", "loss", "P28", ["loss"],
            "some true-class probability is below 1e-7 and one loss equals the clipped formula",
            _check_prob_clip,
            explanation="Keras CategoricalCrossentropy(from_logits=False) on an eager softmax output clips p to [1e-7, 1 - 1e-7] (max 16.12 per example, zero gradient for clipped entries); torch's cross_entropy on logits is exact.",
            tf="-sum(y log(clip(p / sum p, 1e-7, 1 - 1e-7)))", torch="F.cross_entropy(logits, y) = -sum(y log_softmax(logits))",
            fix="Clamp the probabilities like Keras (or use from_logits=True on both sides)."),
    pitfall("loss-on-probabilities", "A loss on probabilities: softmax then nll_loss (or cross_entropy, or from_logits mismatch)", "loss", "P28",
            ["loss"], "probabilities and labels agree; one loss is -mean(log p_y), the other -mean(p_y) (nll_loss on p) or the "
            "cross-entropy of softmax(p) (a second softmax)",
            _check_on_probabilities,
            explanation="F.nll_loss expects log-probabilities: after a softmax it computes -mean(p_y), not the cross-entropy; "
                        "F.cross_entropy expects logits: on probabilities it applies a second softmax (Keras: from_logits=True on a "
                        "softmax output). The loss still falls, more slowly, and its gradients differ from the first step.",
            tf="softmax_cross_entropy_with_logits(labels, logits) = -mean(log softmax(logits)_y)",
            torch="F.nll_loss(F.softmax(logits), y) = -mean(p_y)   (log_softmax was meant)",
            fix="F.cross_entropy(logits, y), or F.nll_loss(F.log_softmax(logits), y)."),
]
