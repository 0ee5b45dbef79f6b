"""Driving the user's dropout with parity's masks: a call of ``F.dropout`` / ``torch.dropout``
(``nn.Dropout`` calls the former), seen by the forward's TorchFunctionMode, becomes
``x * mask / (1 - p)`` with the mask parity drew for that site (channel-last, as TF's; moved to
NCHW, or to a (c, h, w)-flattened input's column order), or the identity when parity gives no mask
(a deterministic probe; in the training steps parity gives every site a mask, a site without a partner
in the other program one of its own). The channel dropouts (``F.dropout1d/2d/3d``, ``nn.Dropout2d``...) are
driven the same way with a channel mask: their site's channel-last shape has 1 for each spatial
dimension (``[N, 1, 1, C]``, as TF's ``noise_shape``), so a channel site never meets an element
site silently. A hand-written torch dropout, ``torch.bernoulli`` of a constant keep probability,
gets parity's mask as its draw (``keep`` everywhere without a mask: ``x * keep / keep`` is the
identity). Each call is recorded as a DropoutSite; the alpha dropouts, which parity cannot drive,
are noted.
"""

from __future__ import annotations

import numpy as np

from parity.errors import ParityError
from parity.portkit.program import DropoutSite, fit_mask, OWN_MASK, site_mask

from .. import torch as _torch

__all__ = ["OWN_MASK", "site_mask", "is_dropout", "dropout_arguments", "undriven", "drive", "is_bernoulli", "drive_bernoulli"]


def _channel_functions(t) -> tuple:
    F = t.nn.functional
    return (F.dropout1d, F.dropout2d, F.dropout3d, t.feature_dropout)


def is_dropout(func, t) -> bool:
    """Whether ``func`` is a dropout parity drives (``F.dropout``, ``torch.dropout``, the channel dropouts)."""
    F = t.nn.functional
    return func is F.dropout or func is t.dropout or func in _channel_functions(t)


def dropout_arguments(func, args, kwargs, t) -> tuple:
    """``(x, p, training, channel)`` of a call of ``F.dropout``, ``torch.dropout`` (its ``train``) or a
    channel dropout (``channel``: True)."""
    F = t.nn.functional
    x = args[0]
    channel = func in _channel_functions(t)
    if func is F.dropout or (channel and func is not t.feature_dropout):
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        training = kwargs.get("training", args[2] if len(args) > 2 else True)
    else:
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        training = kwargs.get("train", args[2] if len(args) > 2 else True)
    return x, float(p), bool(training), channel


def undriven(func, t) -> str | None:
    """The note for a dropout parity cannot drive (channel or alpha dropout); None for other functions."""
    F = t.nn.functional
    if func in (F.alpha_dropout, F.feature_alpha_dropout, t.alpha_dropout, t.feature_alpha_dropout):
        return (f"{getattr(func, '__name__', func)} (alpha dropout) is not driven by parity's masks: it draws its own "
                "(that layer and what follows differ by chance: compare them statistically, not element by element)")
    return None


def _site_shape(x, channel: bool) -> tuple:
    """The channel-last shape of the mask of a dropout of ``x`` (NCHW-like when 4-D or channel)."""
    if channel:  # [N, C, *spatial] -> [N, 1, ..., 1, C]
        return (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[1],)
    return tuple(x.shape) if x.dim() != 4 else (x.shape[0], x.shape[2], x.shape[3], x.shape[1])


def drive(watch, x, p: float, training: bool, channel: bool = False):
    """Apply site ``len(watch.sites)``'s mask to ``x`` (the watch of the forward: masks, sites, tags)."""
    if not training or p == 0.0:
        return x
    index = len(watch.sites)
    shape = _site_shape(x, channel)
    name = watch.prog._current[-1] if watch.prog._current else f"dropout#{index}"
    watch.sites.append(DropoutSite(index, name, shape, float(p)))
    mask = site_mask(watch.masks, index, shape)
    if mask is None:  # no mask for this site: the identity (a deterministic probe)
        if id(x) in watch.tags:
            y = x.clone()
            watch.tag(y, watch.tags[id(x)])
            return y
        return x
    m = fit_mask(mask, shape)
    if m.shape != shape:
        raise ParityError(f"dropout site {index} ({name}): mask of shape {list(m.shape)} for an input of shape {list(shape)} (channel-last)")
    tag = watch.tags.get(id(x))
    y = x * (_channel_tensor(m, x) if channel else _mask_tensor(m, x, tag)) / (1.0 - p)
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


def _channel_tensor(m: np.ndarray, x):
    """A channel-last channel mask ``[N, 1, .., 1, C]`` as ``[N, C, 1, .., 1]`` in ``x``'s dtype and device."""
    t = _torch()
    mt = t.from_numpy(np.ascontiguousarray(m)).to(dtype=x.dtype, device=x.device)
    return mt.movedim(-1, 1)


def is_bernoulli(func, args, t) -> bool:
    """``torch.bernoulli(probs)`` of a constant keep probability (a hand-written dropout's draw)."""
    if func is not t.bernoulli or not args or not isinstance(args[0], t.Tensor) or len(args) > 1:
        return False
    probs = args[0]
    return probs.is_floating_point() and probs.numel() > 0 and bool((probs == probs.flatten()[0]).all())


def drive_bernoulli(watch, probs):
    """The draw of a hand-written dropout: site ``len(watch.sites)``'s mask (``keep`` without a mask)."""
    keep = float(probs.flatten()[0])
    index = len(watch.sites)
    shape = tuple(probs.shape) if probs.dim() != 4 else (probs.shape[0], probs.shape[2], probs.shape[3], probs.shape[1])
    name = watch.prog._current[-1] if watch.prog._current else f"bernoulli#{index}"
    watch.sites.append(DropoutSite(index, name, shape, 1.0 - keep))
    mask = site_mask(watch.masks, index, shape)
    if mask is None:  # x * keep / keep: the identity (a deterministic probe)
        return probs.clone()
    m = fit_mask(mask, shape)
    if m.shape != shape:
        raise ParityError(f"dropout site {index} ({name}): mask of shape {list(m.shape)} for a draw of shape {list(shape)} (channel-last)")
    return _mask_tensor(m, probs, None)
