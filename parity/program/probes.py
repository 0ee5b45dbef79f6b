"""The probes of :func:`parity.program.prepare.prepare` that pair what the mapping cannot decide by structure:
same-shape variables tried on a perturbed forward (:func:`_probe_score`), and the layer outputs paired by
kind, shape and call order, the probe's values only confirming (:func:`_outputs`). numpy only."""

from __future__ import annotations

import numpy as np

from parity.errors import ParityError

__all__ = ["_outputs", "_probe_score"]


def _probe_score(R, P, batch):
    """``score(mapping)``: how many layer outputs (by value) and the loss agree when the port runs from the
    reference's weights mapped by ``mapping`` (the evidence that decides between same-shape candidates).

    The probe's weights are the reference's, each value scaled and shifted by a few per cent at random, so
    that layers initialised alike (BatchNorm's gamma = 1) tell apart; ``score.restore()`` puts the
    reference's own weights back."""
    from parity.program.outputs import kinds_of, pair_outputs, same_output

    cache: dict = {}

    def perturbed() -> dict:
        rng = np.random.default_rng(20)
        kinds = {s.name: s.kind for s in R.parameter_specs()}
        out = {}
        for k, w in cache["original"].items():
            scale = float(np.mean(np.abs(w))) if np.size(w) else 0.0
            w = w * (1 + 0.25 * rng.uniform(-1, 1, np.shape(w)))
            if kinds.get(k) != "bn_var":  # a variance stays positive
                w = w + 0.05 * (scale or 0.1) * rng.uniform(-1, 1, np.shape(w))
            out[k] = w
        return out

    def score(m) -> float:
        if "ref" not in cache:
            cache["original"] = {k: np.asarray(v, dtype=np.float64) for k, v in R.parameters().items()}
            cache["initial"] = perturbed()
            R.load(cache["initial"])
            cache["ref"] = R.forward(batch, {})
            cache["loss"] = getattr(R, "probe_loss", lambda: None)()
        P.load(m.port_weights(cache["initial"]))
        ap = cache["port"] = P.forward(batch, {})
        # outputs paired by structure (kind, shape, call order), as the comparison will pair them
        pairs = pair_outputs(cache["ref"], ap, kinds_of(R), kinds_of(P)).pairs
        agree = sum(same_output(cache["ref"][a], ap[b]) for a, b in pairs)
        lp = getattr(P, "probe_loss", lambda: None)()
        return agree + (cache["loss"] is not None and lp is not None and same_output(cache["loss"], lp))

    def restore() -> None:
        if "original" in cache:
            R.load(cache["original"])

    score.restore = restore
    # the layer outputs' names in call order, both sides (evidence that creation order is call order)
    score.calls = lambda: (list(cache["ref"]), list(cache["port"])) if "port" in cache else None
    return score


def _outputs(m, R, P, ar: dict, ap: dict) -> None:
    """Pair the layer outputs (``m.forward``) by structure (kind, shape, call order: :mod:`parity.program.outputs`),
    the probe's values only confirming, unless the mapping names them; outputs cut at different places (a
    softmax inside one side's last layer) are left out, and every output left out gets a reason in the notes."""
    from parity.program.outputs import (apply_forward_edits, kinds_of, pair_outputs, recording_notes, same_output,
                                       unpaired_notes)

    m.notes.extend([f"reference: {n}" for n in recording_notes(R)] + [f"port: {n}" for n in recording_notes(P)])

    if m.forward:
        bad = [f"{a} -> {b}" for a, b in m.forward if a not in ar or b not in ap]
        if bad:
            raise ParityError(f"mapping: layer outputs not found: {', '.join(bad)}; reference outputs: {', '.join(ar)}; port outputs: {', '.join(ap)}")
        return
    kr, kp = kinds_of(R), kinds_of(P)
    from parity.program.outputs import owners_from  # the layers the variable mapping pairs (a GAN's G ~ G, D ~ D)

    pairing = pair_outputs(ar, ap, kr, kp, owners=owners_from(m, R.parameter_specs(), P.parameter_specs()))
    pairs = pairing.pairs
    if getattr(m, "forward_edits", None):  # the mapping file's drop / add / re-pair entries
        pairs = apply_forward_edits(pairs, m.forward_edits, list(ar), list(ap))
    m.notes.extend(unpaired_notes(pairing, ar, ap, kr, kp))
    left_r = [a for a in ar if a not in {x for x, _ in pairs}]
    left_p = [b for b in ap if b not in {y for _, y in pairs}]

    def leave_out(drop, why: str) -> None:
        nonlocal pairs
        if drop:
            pairs = [p for p in pairs if p not in drop]
            left_r.extend(a for a, _ in drop)
            left_p.extend(b for _, b in drop)
            m.notes.append("layer outputs " + ", ".join(f"{a}/{b}" for a, b in drop) + why)

    lr_, lp_ = getattr(R, "probe_loss", lambda: None)(), getattr(P, "probe_loss", lambda: None)()
    if lr_ is not None and lp_ is not None and same_output(lr_, lp_):
        # the two compute the same loss from the same weights: a pair of outputs that differ
        # here is two different cuts of the network (softmax inside a Dense vs logits), not a bug
        leave_out([(a, b) for a, b in pairs if not same_output(ar[a], ap[b])],
                  " differ at the probe while the losses agree: different cuts of the network (e.g. a softmax "
                  "inside a Dense layer), not compared")
    # a softmax / sigmoid inside one side's last layer (Keras Dense(activation="softmax")) vs logits
    # on the other: the same layer cut differently; not compared (the loss stage compares them)
    leave_out([(a, b) for a, b in pairs if not same_output(ar[a], ap[b]) and _activated(ar[a], ap[b])],
              ": one is the softmax (or sigmoid) of the other (an activation inside a Dense layer vs logits): not compared")
    m.forward = pairs
    if left_r:
        m.not_compared["reference layer outputs"] = left_r
    if left_p:
        m.not_compared["port layer outputs"] = left_p


def _activated(a, b) -> bool:
    """Whether one array is the softmax or the sigmoid (over the last axis) of the other."""
    from parity.program.outputs import same_output

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim < 1:
        return False

    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    with np.errstate(all="ignore"):
        return any(same_output(f(x), y) for f in (softmax, sigmoid) for x, y in ((a, b), (b, a)))
