"""Which forward outputs are recorded, and how: a forward pre-hook and a forward hook on every leaf
module record its floating output in call order under its dotted name (``name#2`` for a second
call; an RNN's sequence output batch-major under its name, its final state as ``name/c``,
``name/h`` (kinds rnn_cell, rnn_state; per layer and direction, ``name/h.1``...)), and a TorchFunctionMode
(:class:`Watch`) sees every torch function however it is imported: outside a leaf module it records
the functional layers a ``forward`` calls (``F.relu``, ``F.max_pool2d``, ``x @ w``, softmax...: see
:mod:`.kinds`) like modules, as ``F.relu``, ``F.relu#2``..., a bias added to a recorded matmul
replacing it (TF's ``MatMul`` + ``BiasAdd`` is one output); it hands dropout to :mod:`.dropout`,
tags permutes and flattens so a Linear after a conv is known to read ``(c, h, w)`` or ``(h, w, c)``
order, and puts recorded outputs in the canonical (channel-last) layout;
a normal or uniform draw (``torch.randn_like``...) goes to :mod:`.noise` (parity's draw for its site). Each output's kind
(linear, conv, activation, pool, norm, dropout, embedding, rnn, rnn_state, reshape, other; ``any``
for a flatten's unrecorded input) is kept in ``prog._forward_kinds`` for the structural pairing.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .. import torch as _torch
from . import dropout, noise
from .dtype import default_dtype
from .kinds import function_kind, function_label, module_kind

__all__ = ["Watch", "function_mode", "recording", "canonical_activations"]


class Watch:
    """The TorchFunctionMode body: drives dropout with masks, tags flattens, notes Linear inputs."""

    def __init__(self, prog, masks, acts: dict | None = None):
        self.prog, self.masks, self.acts = prog, masks or {}, acts
        self.flattens = 0
        self.sites: list = []  # DropoutSite, in call order
        self.noise: list = []  # the normal / uniform draws parity drives (DropoutSite, index NOISE_BASE[kind] + k)
        self.noise_counts: dict[str, int] = {}
        self.tags: dict[int, tuple] = {}  # id(tensor) -> ("perm", dims) | ("flat", order, (c, h, w))
        self.keep: list = []  # keeps tagged tensors alive so their ids stay unique
        self.kinds: dict[str, str] = {}  # recorded output -> kind
        self.counts: dict[str, int] = {}
        self.linear_out: dict[int, str] = {}  # id(recorded matmul/conv output) -> its key (a bias add replaces it)
        self.recorded: set[int] = set()  # ids of recorded outputs (a flatten of one records nothing more)
        # leaf modules of the user's own (no torch kind): the functions inside them are recorded too
        self.custom = {name or "model" for name, mod in getattr(prog, "_leaves", []) if module_kind(mod) == "other"}

    def put(self, name: str, kind: str, out, arr: np.ndarray) -> str:
        """Record ``arr`` (the output ``out``) under ``name`` (``name#n`` for its n-th call) with its kind."""
        self.counts[name] = self.counts.get(name, 0) + 1
        key = name if self.counts[name] == 1 else f"{name}#{self.counts[name]}"
        if self.acts is not None:
            self.acts[key] = arr
        self.kinds[key] = kind
        self.keep.append(out)
        self.recorded.add(id(out))
        return key

    def _record_function(self, func, args, out, t) -> None:
        """A functional layer called in a ``forward`` (not inside a leaf module): recorded like a module."""
        if self.acts is None or not isinstance(out, t.Tensor) or not out.is_floating_point():
            return
        current = self.prog._current[-1] if self.prog._current else None
        if current is not None and current not in self.custom:
            return  # inside a torch layer (nn.Linear's F.linear): the module's output is recorded
        kind = function_kind(func)
        if kind is None:
            self._bias_add(func, args, out, t)
            return
        label = function_label(func) if current is None else f"{current}/{function_label(func)}"
        key = self.put(label, kind, out, self.snapshot(out))
        if kind in ("linear", "conv"):
            self.linear_out[id(out)] = key

    def _bias_add(self, func, args, out, t) -> bool:
        """``matmul_out + bias`` (a parameter): the bias add replaces the matmul's recorded output."""
        if getattr(func, "__name__", None) not in ("add", "__add__", "__radd__", "add_", "__iadd__") or len(args) < 2:
            return False
        a, b = args[0], args[1]
        for y, bias in ((a, b), (b, a)):
            if isinstance(y, t.Tensor) and id(y) in self.linear_out and id(bias) in self.prog._pnames:
                key = self.linear_out.pop(id(y))
                self.acts[key] = self.snapshot(out)
                self.keep.append(out)
                self.recorded.add(id(out))
                return True
        return False

    def tag(self, out, value):
        self.keep.append(out)
        self.tags[id(out)] = value

    def snapshot(self, out) -> np.ndarray:
        """A recorded output copied once: what :meth:`canonical` of ``prog._np(out)`` holds, and a 4-D one already
        channel-last in memory (an NCHW view of it: :func:`canonical_activations` then takes it as it is instead of
        copying it again; the seed 001 convnet's 4-D outputs are ~87 MB a float64 step at batch 128)."""
        view = out.detach().cpu().numpy()  # the tensor's own memory on a CPU: copied below, always
        tag = self.tags.get(id(out))
        if tag is not None and tag[0] == "flat" and tag[1] == "chw" and view.ndim == 2:
            c, h, w = tag[2]
            n = view.shape[0]
            return np.array(view.reshape(n, c, h, w).transpose(0, 2, 3, 1), order="C").reshape(n, -1)
        if view.ndim == 4:
            return np.array(view.transpose(0, 2, 3, 1), order="C").transpose(0, 3, 1, 2)
        return np.array(view, order="C")

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
            out = dropout.drive(self, *dropout.dropout_arguments(func, args, kwargs, t))
            current = self.prog._current[-1] if self.prog._current else None
            if (self.acts is not None and (current is None or current in self.custom) and isinstance(out, t.Tensor)
                    and out.is_floating_point()):
                label = "F.dropout" if current is None else f"{current}/F.dropout"
                self.put(label, "dropout", out, self.snapshot(out))
            return out
        if dropout.is_bernoulli(func, args, t):
            return dropout.drive_bernoulli(self, args[0])
        if noise.noise_kind(func, t):
            return noise.drive(self, func, args, kwargs)
        note = dropout.undriven(func, t) or noise.undriven(func, t)
        if note is not None:
            self.prog._note(note)
        out = func(*args, **kwargs)
        self._record_function(func, args, out, t)
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
        if self.acts is not None and prior is None and x.is_floating_point() and id(x) not in self.recorded and not self.prog._current:
            # the map a flatten reads when nothing recorded it (a layer parity does not know): a layer output
            self.put("(flatten input)", "any", x, x.detach().cpu().numpy().copy())
        if prior is None:
            self.tag(out, ("flat", "chw", tuple(x.shape[1:])))
        elif prior[0] == "perm" and tuple(prior[1]) == (0, 2, 3, 1):
            self.tag(out, ("flat", "hwc", (x.shape[3], x.shape[1], x.shape[2])))
        else:
            self.tag(out, ("flat", "other", tuple(x.shape[1:])))


_MODE: list = []  # the one TorchFunctionMode class, made at first use (torch is imported then)


def function_mode(watch: Watch):
    """A TorchFunctionMode that hands every torch function call to ``watch`` until it exits.

    One class for every step, ``watch`` on the instance and dropped at exit: a class made per step (a closure
    over its ``watch``) is a reference cycle (a class refers to itself), so each step's watch, its recorded
    outputs and their tensors (171 MB a float64 step of the seed 001 convnet at batch 128) lived until the
    collector ran (``tests/test_diff_workers.py`` checks that a step leaves nothing for it)."""
    if not _MODE:
        from torch.overrides import TorchFunctionMode

        class _Mode(TorchFunctionMode):
            def __init__(self, watch):
                super().__init__()
                self.watch = watch

            def __torch_function__(self, func, types, args=(), kwargs=None):
                return self.watch.handle(func, args, kwargs or {})

            def __exit__(self, exc_type, exc_val, exc_tb):
                try:
                    return super().__exit__(exc_type, exc_val, exc_tb)
                finally:
                    self.watch = None

        _MODE.append(_Mode)
    return _MODE[0](watch)


@contextlib.contextmanager
def recording(prog, acts: dict, masks):
    """Hooks on every leaf module of ``prog`` (outputs in call order) + the function mode (dropout, flatten)."""
    t = prog.t
    handles = []
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
            if name not in prog._order:
                prog._order.append(name)
            if isinstance(mod, t.nn.RNNBase) and isinstance(out, tuple) and len(out) == 2:
                _record_rnn(watch, prog, name, mod, out, t)
                return
            if isinstance(out, (tuple, list)) and out and isinstance(out[0], t.Tensor):
                out = out[0]  # an LSTMCell: (h, c)
            if not isinstance(out, t.Tensor) or not out.is_floating_point() or id(out) in watch.recorded:
                return  # (a module of the user's own whose last function was recorded: that is its output)
            watch.put(name, module_kind(mod), out, watch.snapshot(out))
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
        prog._sites = watch.sites + watch.noise
        prog._forward_kinds = dict(watch.kinds)


def _record_rnn(watch: Watch, prog, name: str, mod, out, t) -> None:
    """An ``nn.LSTM`` / ``GRU`` / ``RNN``'s sequence output (batch-major) and its final state (``name/h``,
    ``name/c``; ``name/h.1``... for each further layer or direction), each ``[N, H]``."""
    seq, state = out
    if isinstance(seq, t.nn.utils.rnn.PackedSequence) or not isinstance(seq, t.Tensor):
        return
    arr = prog._np(seq)
    if arr.ndim == 3 and not getattr(mod, "batch_first", False):
        arr = np.ascontiguousarray(arr.transpose(1, 0, 2))  # [T, N, H] -> [N, T, H], as TF's dynamic_rnn
    watch.put(name, "rnn", seq, arr)
    parts = state if isinstance(state, tuple) else (state,)
    per_layer = [(label, p, p.reshape((-1,) + p.shape[-2:]) if p.ndim == 3 else p[None])
                 for label, p in zip(("h", "c"), (prog._np(s) for s in parts))]
    for i in range(len(per_layer[0][2])):
        for label, s, layers in sorted(per_layer, key=lambda e: e[0] != "c"):  # (c, h) per layer, as TF's LSTMStateTuple
            layer = layers[i]
            watch.put(f"{name}/{label}" + (f".{i}" if i else ""), "rnn_cell" if label == "c" else "rnn_state", seq, np.ascontiguousarray(layer))


def canonical_activations(acts: dict) -> dict:
    """4-D outputs NCHW -> NHWC (a flattened output was reordered to (h, w, c) when recorded)."""
    out = {}
    for k, v in acts.items():
        out[k] = np.ascontiguousarray(np.transpose(v, (0, 2, 3, 1))) if v.ndim == 4 else v
    return out
