"""Which forward outputs are recorded, and how: a forward pre-hook and a forward hook on every leaf
module record its floating output in call order under its dotted name (``name#2`` for a second
call; an LSTM's output, not its state), and a TorchFunctionMode (:class:`Watch`) sees every torch
function however it is imported: it hands dropout to :mod:`.dropout`, tags permutes and flattens so
a Linear after a conv is known to read ``(c, h, w)`` or ``(h, w, c)`` order, records the map a
flatten reads, and puts recorded outputs in the canonical (channel-last) layout.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import torch as _torch
from . import dropout
from .dtype import default_dtype

__all__ = ["Watch", "function_mode", "recording", "canonical_activations"]


class Watch:
    """The TorchFunctionMode body: drives dropout with masks, tags flattens, notes Linear inputs."""

    def __init__(self, prog, masks, acts: dict | None = None):
        self.prog, self.masks, self.acts = prog, masks or {}, acts
        self.flattens = 0
        self.sites: list = []  # DropoutSite, in call order
        self.tags: dict[int, tuple] = {}  # id(tensor) -> ("perm", dims) | ("flat", order, (c, h, w))
        self.keep: list = []  # keeps tagged tensors alive so their ids stay unique

    def tag(self, out, value):
        self.keep.append(out)
        self.tags[id(out)] = value

    def canonical(self, out, arr: np.ndarray) -> np.ndarray:
        """A recorded output in the canonical layout: a (c, h, w)-flattened one reordered to (h, w, c)."""
        tag = self.tags.get(id(out))
        if tag is not None and tag[0] == "flat" and tag[1] == "chw" and arr.ndim == 2:
            c, h, w = tag[2]
            n = arr.shape[0]
            return np.ascontiguousarray(arr.reshape(n, c, h, w).transpose(0, 2, 3, 1).reshape(n, -1))
        return arr

    def handle(self, func, args, kwargs):
        t = _torch()
        if dropout.is_dropout(func, t):
            return dropout.drive(self, *dropout.dropout_arguments(func, args, kwargs, t))
        note = dropout.undriven(func, t)
        if note is not None:
            self.prog._note(note)
        out = func(*args, **kwargs)
        if not isinstance(out, t.Tensor) or not args or not isinstance(args[0], t.Tensor):
            return out
        self._layout(func, args, kwargs, out, t)
        return out

    def _layout(self, func, args, kwargs, out, t) -> None:
        """Tag ``out`` with the layout a permute, transpose or flatten of a 4-D map gave it."""
        x = args[0]
        if func in (t.Tensor.permute, t.permute):
            dims = args[1:] if len(args) > 1 else kwargs.get("dims", ())
            dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
            if x.dim() == 4:
                self.tag(out, ("perm", dims))
        elif func in (t.Tensor.transpose, t.transpose) and x.dim() == 4:
            self.tag(out, ("perm", ("transpose",) + tuple(args[1:])))
        elif func is t.Tensor.contiguous and id(x) in self.tags:
            self.tag(out, self.tags[id(x)])
        elif func in (t.Tensor.view, t.Tensor.reshape, t.reshape, t.flatten, t.Tensor.flatten) and x.dim() == 4 and out.dim() == 2:
            self._flatten(x, out)
        elif func is t.nn.functional.linear:
            w = args[1] if len(args) > 1 else kwargs.get("weight")
            tag = self.tags.get(id(x))
            name = self.prog._pnames.get(id(w)) if w is not None else None
            if tag is not None and tag[0] == "flat" and name is not None:
                self.prog._flatten[name] = {"order": tag[1], "chw": [int(s) for s in tag[2]]}

    def _flatten(self, x, out) -> None:
        """A 4-D map ``x`` flattened to 2-D ``out``: record the map, tag the order of ``out``'s columns."""
        prior = self.tags.get(id(x))
        if self.acts is not None and prior is None and x.is_floating_point():
            # the map a flatten reads (often a functional pool's output, which no hook sees): a layer output
            self.flattens += 1
            key = "(flatten input)" if self.flattens == 1 else f"(flatten input)#{self.flattens}"
            self.acts[key] = x.detach().cpu().numpy().copy()
        if prior is None:
            self.tag(out, ("flat", "chw", tuple(x.shape[1:])))
        elif prior[0] == "perm" and tuple(prior[1]) == (0, 2, 3, 1):
            self.tag(out, ("flat", "hwc", (x.shape[3], x.shape[1], x.shape[2])))
        else:
            self.tag(out, ("flat", "other", tuple(x.shape[1:])))


def function_mode(watch: Watch):
    """A TorchFunctionMode that hands every torch function call to ``watch``."""
    from torch.overrides import TorchFunctionMode

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return watch.handle(func, args, kwargs or {})

    return _Mode()


@contextlib.contextmanager
def recording(prog, acts: dict, masks):
    """Hooks on every leaf module of ``prog`` (outputs in call order) + the function mode (dropout, flatten)."""
    t = prog.t
    handles = []
    counts: dict[str, int] = {}
    prog._order = []
    watch = Watch(prog, masks, acts)

    def pre(name):
        def hook(mod, args):
            prog._current.append(name)
        return hook

    def post(name):
        def hook(mod, args, out):
            if prog._current and prog._current[-1] == name:
                prog._current.pop()
            if isinstance(out, (tuple, list)) and out and isinstance(out[0], t.Tensor):
                out = out[0]  # nn.LSTM: (output, (h, c))
            if not isinstance(out, t.Tensor) or not out.is_floating_point():
                return
            counts[name] = counts.get(name, 0) + 1
            key = name if counts[name] == 1 else f"{name}#{counts[name]}"
            if name not in prog._order:
                prog._order.append(name)
            acts[key] = watch.canonical(out, prog._np(out))
        return hook

    for name, mod in prog._leaves:
        handles.append(mod.register_forward_pre_hook(pre(name or "model")))
        handles.append(mod.register_forward_hook(post(name or "model")))
    try:
        with default_dtype(prog.dtype), function_mode(watch):
            yield watch
    finally:
        for h in handles:
            h.remove()
        prog._current = []
        prog._sites = watch.sites


def canonical_activations(acts: dict) -> dict:
    """4-D outputs NCHW -> NHWC (a flattened output was reordered to (h, w, c) when recorded)."""
    out = {}
    for k, v in acts.items():
        out[k] = np.ascontiguousarray(np.transpose(v, (0, 2, 3, 1))) if v.ndim == 4 else v
    return out
