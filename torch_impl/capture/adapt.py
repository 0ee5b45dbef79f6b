"""Batches adapted to what a torch port's model and loss take, where the reference feeds them otherwise.

A TF reference often feeds flat ``[N, 784]`` images that its graph reshapes, and one-hot labels; a
PyTorch port written the PyTorch way takes ``[N, 1, 28, 28]`` images in its first ``Conv2d`` and class
indices in ``F.nll_loss`` / ``nn.NLLLoss`` (or class indices where the port's loss wants one-hot rows).
When the port's model and loss fail on the batch as it is, :func:`choose` tries, in order: the inputs
reshaped to the port's first layer (flat rows read as ``(h, w, c)``, TF's order, then made NCHW), the
labels turned one-hot <-> class index, both. The first that runs is kept for the whole run of that file
(one note says what was adapted); when none runs, the program's own error stands (a one-line error
says what to give ``parity_program()`` when that error is not in the user's file).
"""

from __future__ import annotations

import math
import traceback

__all__ = ["choose", "apply", "ADAPTED"]

#: program file -> the adaptations chosen at its probe (key -> (kind, argument)); reused by later captures
ADAPTED: dict = {}


def _first_layer(model, t):
    for name, m in model.named_modules():
        if isinstance(m, (t.nn.Conv2d, t.nn.Linear)):
            return name, m
    return None, None


def _reshapes(model, xb, inputs, t) -> dict:
    name, layer = _first_layer(model, t)
    out = {}
    if not isinstance(layer, t.nn.Conv2d):
        return out
    c = int(layer.in_channels)
    for k in inputs:
        v = xb.get(k)
        if v is None or not v.is_floating_point() or v.dim() != 2 or int(v.shape[1]) % c:
            continue
        side = math.isqrt(int(v.shape[1]) // c)
        if side * side * c == int(v.shape[1]):
            out[k] = ("image", (side, c),
                      f"{k} [N, {int(v.shape[1])}] -> [N, {c}, {side}, {side}] (the port's first layer {name} is a Conv2d "
                      f"with {c} input channel(s); the flat rows read in (h, w, c) order, TF's)")
    return out


def _labels(model, xb, inputs, targets, t) -> dict:
    out = {}
    for k in targets:
        v = xb.get(k)
        if v is None:
            continue
        if v.is_floating_point() and v.dim() == 2 and bool(((v == 0) | (v == 1)).all()) and bool((v.sum(1) == 1).all()):
            out[k] = ("index", None, f"{k} one-hot [N, {int(v.shape[1])}] -> class indices [N] (the port's loss takes class indices)")
        elif not v.is_floating_point() and v.dim() == 1:
            out[k] = ("onehot", None, f"{k} class indices [N] -> one-hot rows [N, K] (the port's loss takes one-hot rows)")
    return out


def apply(adapt: dict, xb: dict, t, dtype) -> dict:
    """``xb`` with the chosen adaptations applied."""
    out = dict(xb)
    for k, (kind, arg, _) in adapt.items():
        v = out[k]
        if kind == "image":
            side, c = arg
            out[k] = v.reshape(v.shape[0], side, side, c).permute(0, 3, 1, 2).contiguous()
        elif kind == "index":
            out[k] = v.argmax(dim=1)
        elif kind == "onehot":
            out[k] = t.nn.functional.one_hot(v.long(), int(arg)).to(dtype)
    return out


def choose(model, forward_loss, xb: dict, inputs, targets, t, dtype, where: str) -> dict:
    """The adaptations that make ``forward_loss(xb)`` run ({} when it runs as it is); raises the program's
    own error when none does (a one-line ParityError when that error is not in the user's file ``where``)."""
    try:
        with t.no_grad():
            forward_loss(xb)
        return {}
    except Exception as exc:  # the batch as it is does not fit: try the adaptations below
        first = exc
    reshapes = _reshapes(model, xb, inputs, t)
    labels = _labels(model, xb, inputs, targets, t)
    if any(kind == "onehot" for kind, _, _ in labels.values()):
        try:
            with t.no_grad():
                out = model(*[apply(reshapes, xb, t, dtype)[k] for k in inputs if k in xb])
            classes = int(out.shape[-1])
            labels = {k: (kind, classes if kind == "onehot" else arg, why) for k, (kind, arg, why) in labels.items()}
        except Exception:  # the model does not run on them either: no one-hot labels to try
            labels = {k: v for k, v in labels.items() if v[0] != "onehot"}
    for trial in (reshapes, labels, {**reshapes, **labels}):
        if not trial:
            continue
        try:
            with t.no_grad():
                forward_loss(apply(trial, xb, t, dtype))
            return trial
        except Exception:  # this adaptation does not fit either: the next one
            continue
    import os

    in_file = any(os.path.realpath(f.filename) == os.path.realpath(where) for f in traceback.extract_tb(first.__traceback__))
    if in_file:
        raise first
    from parity.errors import ParityError

    line = (str(first).strip().splitlines() or [""])[0]
    raise ParityError(f"{where}: the port's model or loss cannot take the reference's batch "
                      f"({', '.join(f'{k} {list(v.shape)}' for k, v in xb.items())}): {type(first).__name__}: {line}; parity "
                      "tried the inputs reshaped to the first layer and one-hot <-> class-index labels: give "
                      "parity_program() a \"train_step\"(batch) that adapts the batch itself (docs/own-model.md)") from first
