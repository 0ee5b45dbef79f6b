"""Driving the user's dropout with parity's masks: a call of ``F.dropout`` / ``torch.dropout``
(``nn.Dropout`` calls the former), seen by the forward's TorchFunctionMode, becomes
``x * mask / (1 - p)`` with the mask parity drew for that site (channel-last, as TF's; moved to
NCHW, or to a (c, h, w)-flattened input's column order), or the identity when parity gives no mask
(a deterministic probe). Each call is recorded as a DropoutSite; the channel and alpha dropouts,
which parity cannot drive, are noted.
"""

from __future__ import annotations

import numpy as np

from parity.errors import ParityError
from parity.portkit.program import DropoutSite

from .. import torch as _torch

__all__ = ["is_dropout", "dropout_arguments", "undriven", "drive"]


def is_dropout(func, t) -> bool:
    """Whether ``func`` is a dropout parity drives (``F.dropout``, ``torch.dropout``)."""
    F = t.nn.functional
    return func is F.dropout or func is t.dropout


def dropout_arguments(func, args, kwargs, t) -> tuple:
    """``(x, p, training)`` of a call of ``F.dropout`` or ``torch.dropout`` (its ``train``)."""
    F = t.nn.functional
    x = args[0]
    if func is F.dropout:
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        training = kwargs.get("training", args[2] if len(args) > 2 else True)
    else:
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        training = kwargs.get("train", args[2] if len(args) > 2 else True)
    return x, float(p), bool(training)


def undriven(func, t) -> str | None:
    """The note for a dropout parity cannot drive (channel or alpha dropout); None for other functions."""
    F = t.nn.functional
    if func in (F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout):
        return f"{getattr(func, '__name__', func)} (channel/alpha dropout) is not driven by parity's masks: it draws its own"
    return None


def drive(watch, x, p: float, training: bool):
    """Apply site ``len(watch.sites)``'s mask to ``x`` (the watch of the forward: masks, sites, tags)."""
    if not training or p == 0.0:
        return x
    index = len(watch.sites)
    shape = tuple(x.shape) if x.dim() != 4 else (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
    name = watch.prog._current[-1] if watch.prog._current else f"dropout#{index}"
    watch.sites.append(DropoutSite(index, name, shape, float(p)))
    mask = watch.masks.get(index)
    if mask is None:  # no mask for this site: the identity (a deterministic probe)
        if id(x) in watch.tags:
            y = x.clone()
            watch.tag(y, watch.tags[id(x)])
            return y
        return x
    m = np.asarray(mask)
    if m.shape != shape:
        raise ParityError(f"dropout site {index} ({name}): mask of shape {list(m.shape)} for an input of shape {list(shape)} (channel-last)")
    tag = watch.tags.get(id(x))
    y = x * _mask_tensor(m, x, tag) / (1.0 - p)
    if tag is not None:
        watch.tag(y, tag)
    return y


def _mask_tensor(m: np.ndarray, x, tag):
    """A channel-last mask as a tensor in ``x``'s layout, dtype and device."""
    t = _torch()
    if x.dim() == 2 and tag is not None and tag[0] == "flat" and tag[1] == "chw":
        c, h, w = tag[2]  # the mask's columns are in (h, w, c) order, this input's in (c, h, w)
        m = m[:, np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)]
    mt = t.from_numpy(np.ascontiguousarray(m)).to(dtype=x.dtype, device=x.device)
    if x.dim() == 4:
        mt = mt.permute(0, 3, 1, 2)
    return mt
