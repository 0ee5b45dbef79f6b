"""Capture a plain PyTorch training program: every stage of every step, without edits to it.

The user's file returns its own objects from ``parity_program()`` (``"model"``, ``"optimizer"``,
``"loss"``, optional ``"scheduler"``, ``"train_step"``, ``"constraint"``, ``"inputs"``,
``"targets"``, ``"data"``); :func:`capture` wraps them in a :class:`TorchProgram` that records:

* forward: every leaf module's output, in call order, under its dotted name (forward hooks);
* gradients: each parameter's ``.grad`` right after ``backward()`` (post-accumulate hooks), before
  any clipping the user's step does; processed gradients: what ``optimizer.step()`` consumed (a
  step pre-hook); the learning rate of each group at that moment;
* parameters after the step, every optimizer slot (``exp_avg`` -> ``m`` ...), the buffers
  (BatchNorm running statistics) and the parameters after a post-step ``constraint``.

Dropout (``F.dropout``, ``nn.Dropout``, ``torch.dropout``: a :class:`~torch.overrides.TorchFunctionMode`
sees them all, however they are imported) is driven by parity's masks: ``x * mask / (1 - p)``.
The same mode watches flattens, so the mapping knows whether a Linear after a conv reads its input
in ``(c, h, w)`` order (``x.view(n, -1)``) or ``(h, w, c)`` (``x.permute(0, 2, 3, 1)`` first).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from parity.errors import ParityError, PortError
from parity.portkit.program import DropoutSite, ParamSpec

from . import device, torch as _torch

__all__ = ["capture", "TorchProgram", "SLOT_NAMES"]

#: torch optimizer state key -> the canonical slot name parity uses
SLOT_NAMES = {
    "exp_avg": "m",
    "exp_avg_sq": "v",
    "max_exp_avg_sq": "vhat",
    "momentum_buffer": "momentum",
    "square_avg": "ms",
    "grad_avg": "mg",
    "sum": "accumulator",
    "acc_delta": "accum_update",
}

_KEYS = ("model", "optimizer", "loss", "scheduler", "train_step", "constraint", "inputs", "targets", "data")


def _dtype(dtype: str):
    t = _torch()
    try:
        return {"float64": t.float64, "float32": t.float32}[dtype]
    except KeyError:
        raise ParityError(f"unknown dtype {dtype!r}; expected float64 or float32") from None


@contextlib.contextmanager
def _default_dtype(dtype: str):
    """Make tensors the program creates on the fly (``torch.zeros``, constants) use ``dtype``."""
    t = _torch()
    old = t.get_default_dtype()
    t.set_default_dtype(_dtype(dtype))
    try:
        yield
    finally:
        t.set_default_dtype(old)


def _user_call(phase: str, fn, *args):
    try:
        return fn(*args)
    except ParityError:
        raise
    except Exception as exc:  # the user's own code failed: a crash of the program, not bad input
        raise PortError("torch", phase, exc) from exc


def capture(build, *, dtype: str, where: str = "the torch program") -> "TorchProgram":
    """Call the user's ``parity_program`` and wrap what it returns.

    Args:
        build: the user's zero-argument ``parity_program`` function.
        dtype: "float64" or "float32": the model (and a loss module) is cast to it, and tensors the
            program makes on the fly default to it.
        where: how to name the program in error messages (its file).

    Raises:
        ParityError: a key is missing or holds an object of the wrong kind (one line, naming it).
        PortError: the user's ``parity_program`` raised.
    """
    t = _torch()
    with _default_dtype(dtype):
        objs = _user_call("parity_program", build)
    if not isinstance(objs, dict):
        raise ParityError(f"{where}: parity_program() must return a dict, got {type(objs).__name__}")
    unknown = sorted(set(objs) - set(_KEYS))
    if unknown:
        raise ParityError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in parity_program()'s dict; torch keys are {', '.join(_KEYS)}")

    def need(key, ok, what, required=True):
        if key not in objs or objs[key] is None:
            if required:
                raise ParityError(f"{where}: parity_program() returned no {key!r} ({what})")
            return None
        if not ok(objs[key]):
            raise ParityError(f"{where}: {key!r} must be {what}, got {type(objs[key]).__name__}")
        return objs[key]

    model = need("model", lambda v: isinstance(v, t.nn.Module), "a torch.nn.Module")
    opt = need("optimizer", lambda v: isinstance(v, t.optim.Optimizer), "a torch.optim.Optimizer")
    train_step = need("train_step", callable, "a function train_step(batch) -> loss", required=False)
    loss = need("loss", callable, "a callable loss(output, *targets)", required=train_step is None)
    sched = need("scheduler", lambda v: callable(getattr(v, "step", None)), "an LR scheduler (with .step())", required=False)
    constraint = need("constraint", callable, "a function called after each step", required=False)
    names = lambda v: isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v)  # noqa: E731
    inputs = need("inputs", names, "a list of batch keys", required=False) or ["x"]
    targets = need("targets", names, "a list of batch keys", required=False)
    data = need("data", callable, "a function returning an iterable of batches", required=False)
    return TorchProgram(model, opt, loss, dtype=dtype, scheduler=sched, train_step=train_step, constraint=constraint,
                        inputs=list(inputs), targets=None if targets is None else list(targets), data=data, where=where)


def _kind(module, attr: str, t) -> str | None:
    nn = t.nn
    if isinstance(module, nn.Linear):
        return {"weight": "dense_kernel", "bias": "bias"}.get(attr)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return {"weight": "conv_kernel", "bias": "bias"}.get(attr)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return {"weight": "bn_gamma", "bias": "bn_beta", "running_mean": "bn_mean", "running_var": "bn_var"}.get(attr)
    if isinstance(module, nn.LayerNorm):
        return {"weight": "ln_gamma", "bias": "ln_beta"}.get(attr)
    if isinstance(module, (nn.LSTM, nn.LSTMCell)):
        if attr.startswith("weight_ih"):
            return "lstm_kernel"
        if attr.startswith("weight_hh"):
            return "lstm_recurrent"
        if attr.startswith("bias"):
            return "lstm_bias"
    if isinstance(module, nn.Embedding) and attr == "weight":
        return "embedding"
    return "other"


class _Watch:
    """The TorchFunctionMode body: drives dropout with masks, tags flattens, notes Linear inputs."""

    def __init__(self, prog: "TorchProgram", masks, acts: dict | None = None):
        self.prog, self.masks, self.acts = prog, masks or {}, acts
        self.flattens = 0
        self.sites: list[DropoutSite] = []
        self.tags: dict[int, tuple] = {}  # id(tensor) -> ("perm", dims) | ("flat", order, (c, h, w))
        self.keep: list = []  # keeps tagged tensors alive so their ids stay unique

    def tag(self, out, value):
        self.keep.append(out)
        self.tags[id(out)] = value

    def dropout(self, x, p, training):
        t = _torch()
        if not training or p == 0.0:
            return x
        index = len(self.sites)
        shape = tuple(x.shape) if x.dim() != 4 else (x.shape[0], x.shape[2], x.shape[3], x.shape[1])
        name = self.prog._current[-1] if self.prog._current else f"dropout#{index}"
        self.sites.append(DropoutSite(index, name, shape, float(p)))
        mask = self.masks.get(index)
        if mask is None:  # no mask for this site: the identity (a deterministic probe)
            if id(x) in self.tags:
                y = x.clone()
                self.tag(y, self.tags[id(x)])
                return y
            return x
        m = np.asarray(mask)
        if m.shape != shape:
            raise ParityError(f"dropout site {index} ({name}): mask of shape {list(m.shape)} for an input of shape {list(shape)} (channel-last)")
        tag = self.tags.get(id(x))
        if x.dim() == 2 and tag is not None and tag[0] == "flat" and tag[1] == "chw":
            c, h, w = tag[2]  # the mask's columns are in (h, w, c) order, this input's in (c, h, w)
            m = m[:, np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)]
        mt = t.from_numpy(np.ascontiguousarray(m)).to(dtype=x.dtype, device=x.device)
        if x.dim() == 4:
            mt = mt.permute(0, 3, 1, 2)
        y = x * mt / (1.0 - p)
        if tag is not None:
            self.tag(y, tag)
        return y

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
        F = t.nn.functional
        if func is F.dropout or func is t.dropout:
            x = args[0]
            if func is F.dropout:
                p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
                training = kwargs.get("training", args[2] if len(args) > 2 else True)
            else:
                p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
                training = kwargs.get("train", args[2] if len(args) > 2 else True)
            return self.dropout(x, float(p), bool(training))
        if func in (F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout):
            self.prog._note(f"{getattr(func, '__name__', func)} (channel/alpha dropout) is not driven by parity's masks: it draws its own")
        out = func(*args, **kwargs)
        if not isinstance(out, t.Tensor) or not args or not isinstance(args[0], t.Tensor):
            return out
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
        elif func is F.linear:
            w = args[1] if len(args) > 1 else kwargs.get("weight")
            tag = self.tags.get(id(x))
            name = self.prog._pnames.get(id(w)) if w is not None else None
            if tag is not None and tag[0] == "flat" and name is not None:
                self.prog._flatten[name] = {"order": tag[1], "chw": [int(s) for s in tag[2]]}
        return out


def _make_mode(watch: _Watch):
    from torch.overrides import TorchFunctionMode

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return watch.handle(func, args, kwargs or {})

    return _Mode()


class TorchProgram:
    """A captured PyTorch program (the CapturedProgram of PROGRAMS-INTERFACE.md)."""

    framework = "torch"

    def __init__(self, model, optimizer, loss, *, dtype, scheduler=None, train_step=None, constraint=None,
                 inputs=("x",), targets=None, data=None, where="the torch program"):
        t = _torch()
        self.t, self.dtype, self.where = t, dtype, where
        self.model = model.to(device=device(), dtype=_dtype(dtype))
        if isinstance(loss, t.nn.Module):
            loss.to(device=device(), dtype=_dtype(dtype))
        self.opt, self.loss_fn, self.scheduler = optimizer, loss, scheduler
        self.train_step, self.constraint = train_step, constraint
        self.inputs, self.targets, self.data_fn = list(inputs), targets, data
        self.report_constrained = constraint is not None
        self._params = dict(self.model.named_parameters())
        self._pnames = {id(p): n for n, p in self._params.items()}
        self._buffers = {n: b for n, b in self.model.named_buffers() if b.is_floating_point()}
        opt_params = [p for g in optimizer.param_groups for p in g["params"]]
        strangers = [p for p in opt_params if id(p) not in self._pnames]
        if strangers:
            raise ParityError(f"{where}: the optimizer holds {len(strangers)} tensor(s) that are not parameters of the model "
                              "(build the optimizer from model.parameters(), after the model)")
        self._in_opt = {id(p) for p in opt_params}
        self._owner = {}
        for mname, mod in self.model.named_modules():
            for attr, p in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
                full = f"{mname}.{attr}" if mname else attr
                if full in self._params or full in self._buffers:
                    self._owner[full] = (mname, _kind(mod, attr, t))
        self._leaves = [(n, m) for n, m in self.model.named_modules() if not any(True for _ in m.children())]
        self._current: list[str] = []
        self._order: list[str] = []  # leaf modules in call order (the last forward)
        self._flatten: dict[str, dict] = {}
        self._sites: list[DropoutSite] = []
        self._notes: list[str] = []

    # -- helpers ---------------------------------------------------------------------------------
    def _note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.append(text)

    def _np(self, x) -> np.ndarray:
        return x.detach().cpu().numpy().copy()

    def _tensors(self, batch) -> dict:
        out = {}
        for k, v in batch.items():
            arr = np.asarray(v)
            if arr.ndim == 4 and k in self.inputs and np.issubdtype(arr.dtype, np.floating):
                arr = arr.transpose(0, 3, 1, 2)  # parity's batches are channel-last (TF's); torch wants NCHW
            tt = self.t.from_numpy(np.array(arr, order="C", copy=True))
            if np.issubdtype(arr.dtype, np.floating):
                tt = tt.to(_dtype(self.dtype))
            elif np.issubdtype(arr.dtype, np.integer):
                tt = tt.long()
            out[k] = tt.to(device())
        return out

    @contextlib.contextmanager
    def _recording(self, acts: dict, masks):
        """Hooks on every leaf module (outputs in call order) + the function mode (dropout, flatten)."""
        handles = []
        counts: dict[str, int] = {}
        self._order = []
        watch = _Watch(self, masks, acts)

        def pre(name):
            def hook(mod, args):
                self._current.append(name)
            return hook

        def post(name):
            def hook(mod, args, out):
                if self._current and self._current[-1] == name:
                    self._current.pop()
                if isinstance(out, (tuple, list)) and out and isinstance(out[0], self.t.Tensor):
                    out = out[0]  # nn.LSTM: (output, (h, c))
                if not isinstance(out, self.t.Tensor) or not out.is_floating_point():
                    return
                counts[name] = counts.get(name, 0) + 1
                key = name if counts[name] == 1 else f"{name}#{counts[name]}"
                if name not in self._order:
                    self._order.append(name)
                acts[key] = watch.canonical(out, self._np(out))
            return hook

        for name, mod in self._leaves:
            handles.append(mod.register_forward_pre_hook(pre(name or "model")))
            handles.append(mod.register_forward_hook(post(name or "model")))
        try:
            with _default_dtype(self.dtype), _make_mode(watch):
                yield watch
        finally:
            for h in handles:
                h.remove()
            self._current = []
            self._sites = watch.sites

    def _forward_loss(self, xb):
        xs = [xb[k] for k in self.inputs if k in xb]
        missing = [k for k in self.inputs if k not in xb]
        if missing:
            raise ParityError(f"{self.where}: the batch has no {', '.join(missing)} (batch keys: {', '.join(xb)}); set 'inputs'")
        targets = self.targets if self.targets is not None else [k for k in xb if k not in self.inputs][:1] or []
        out = self.model(*xs)
        return self.loss_fn(out, *[xb[k] for k in targets])

    # -- the CapturedProgram protocol ---------------------------------------------------------------
    def parameter_specs(self) -> list[ParamSpec]:
        """Parameters then float buffers; ordered by the call order of their module in the last forward."""
        rank = {n: i for i, n in enumerate(self._order)}
        specs = []
        for n, p in self._params.items():
            layer, kind = self._owner.get(n, (n.rpartition(".")[0], "other"))
            specs.append(ParamSpec(n, tuple(p.shape), kind or "other", layer, trainable=p.requires_grad and id(p) in self._in_opt))
        for n, b in self._buffers.items():
            layer, kind = self._owner.get(n, (n.rpartition(".")[0], "other"))
            specs.append(ParamSpec(n, tuple(b.shape), kind or "other", layer, trainable=False))
        order = {s.name: i for i, s in enumerate(specs)}
        return sorted(specs, key=lambda s: (rank.get(s.layer, len(rank)), order[s.name]))

    def parameters(self) -> dict[str, np.ndarray]:
        out = {n: self._np(p) for n, p in self._params.items()}
        out.update({n: self._np(b) for n, b in self._buffers.items()})
        return out

    def load(self, arrays) -> None:
        with self.t.no_grad():
            for name, value in arrays.items():
                target = self._params.get(name, self._buffers.get(name))
                if target is None:
                    raise ParityError(f"{self.where}: no parameter or buffer {name!r} to load")
                v = np.asarray(value)
                if tuple(v.shape) != tuple(target.shape):
                    raise ParityError(f"{self.where}: {name} has shape {list(target.shape)}, the value to load {list(v.shape)}")
                target.copy_(self.t.from_numpy(np.array(v, copy=True)).to(dtype=target.dtype, device=target.device))

    def input_specs(self) -> dict:
        return {}

    def data_source(self):
        return self.data_fn

    def flatten_inputs(self) -> dict[str, dict]:
        """Linear weight name -> {"order": "chw"|"hwc"|"other", "chw": [c, h, w]} seen in the last forward."""
        return dict(self._flatten)

    def forward(self, batch, masks=None) -> dict[str, np.ndarray]:
        """One forward pass (the model's current mode), buffers restored afterwards; no step."""
        acts: dict[str, np.ndarray] = {}
        saved = {n: b.detach().clone() for n, b in self.model.named_buffers()}
        try:
            with self._recording(acts, masks), self.t.no_grad():
                xb = self._tensors(batch)
                if self.loss_fn is not None:
                    loss = _user_call("forward", self._forward_loss, xb)
                    self._probe_loss = float(loss.detach().cpu()) if isinstance(loss, self.t.Tensor) and loss.numel() == 1 else None
                else:
                    self._probe_loss = None
                    _user_call("forward", self.model, *[xb[k] for k in self.inputs])
        finally:
            bufs = dict(self.model.named_buffers())
            with self.t.no_grad():
                for n, b in saved.items():
                    bufs[n].copy_(b)
        return self.canonical_activations(acts)

    def canonical_activations(self, acts: dict) -> dict:
        """4-D outputs NCHW -> NHWC (a flattened output was reordered to (h, w, c) when recorded)."""
        out = {}
        for k, v in acts.items():
            out[k] = np.ascontiguousarray(np.transpose(v, (0, 2, 3, 1))) if v.ndim == 4 else v
        return out

    def probe_loss(self):
        """The loss of the last forward() (None when the program gives no loss function)."""
        return getattr(self, "_probe_loss", None)

    def dropout_sites(self) -> list[DropoutSite]:
        return list(self._sites)

    def settings(self) -> dict:
        g = self.opt.param_groups[0]
        out: dict = {"optimizer": type(self.opt).__name__, "framework_convention": "torch"}
        for k in ("lr", "momentum", "dampening", "nesterov", "weight_decay", "eps", "betas", "alpha", "amsgrad", "centered"):
            if k in g:
                v = g[k]
                v = float(v) if hasattr(v, "item") and not isinstance(v, (tuple, list)) else v
                out[k] = list(v) if isinstance(v, tuple) else v
        if "Adam" in type(self.opt).__name__:
            out["adam_epsilon"] = float(g.get("eps", 0.0))
        if self.scheduler is not None:
            out["scheduler"] = type(self.scheduler).__name__
        out["train_mode"] = bool(self.model.training)
        return out

    def notes(self) -> list[str]:
        notes = list(self._notes)
        if any(isinstance(m, self.t.nn.modules.batchnorm._BatchNorm) for _, m in self._leaves):
            notes.append("BatchNorm num_batches_tracked is not compared (TF keeps no counter)")
        return notes

    def close(self) -> None:
        self._current = []

    def step(self, batch, masks=None) -> dict[str, dict[str, np.ndarray]]:
        t = self.t
        acts: dict[str, np.ndarray] = {}
        raw: dict[str, np.ndarray] = {}
        seen: dict[str, dict] = {}

        def on_grad(name):
            def hook(p):
                if p.grad is not None:
                    raw[name] = self._np(p.grad)
            return hook

        def pre_step(opt, args, kwargs):
            pg, lr = {}, {}
            for i, g in enumerate(opt.param_groups):
                lr["lr" if len(opt.param_groups) == 1 else f"lr/{i}"] = np.asarray(float(g["lr"]), dtype=self.dtype)
                for p in g["params"]:
                    if p.grad is not None:
                        pg[self._pnames[id(p)]] = self._np(p.grad)
            seen["processed_gradients"], seen["learning_rate"] = pg, lr

        def post_step(opt, args, kwargs):
            seen["parameters"] = {n: self._np(p) for n, p in self._params.items() if id(p) in self._in_opt}
            # in-place writes after this (a max-norm constraint) bump a parameter's version counter
            seen["versions"] = {n: p._version for n, p in self._params.items()}

        handles = [p.register_post_accumulate_grad_hook(on_grad(n)) for n, p in self._params.items() if p.requires_grad]
        handles.append(self.opt.register_step_pre_hook(pre_step))
        handles.append(self.opt.register_step_post_hook(post_step))
        try:
            with self._recording(acts, masks):
                xb = self._tensors(batch)
                if self.train_step is not None:
                    loss = _user_call("train_step", self.train_step, xb)
                else:
                    loss = _user_call("step", self._textbook_step, xb)
                if self.constraint is not None:
                    with t.no_grad():
                        _user_call("constraint", self.constraint)
        finally:
            for h in handles:
                h.remove()
        if "parameters" not in seen:
            raise ParityError(f"{self.where}: the step never called optimizer.step()")
        if not isinstance(loss, t.Tensor) and not isinstance(loss, (float, int)):
            raise ParityError(f"{self.where}: train_step must return the loss, got {type(loss).__name__}")
        out = {
            "forward": self.canonical_activations(acts),
            "loss": {"loss": np.asarray(self._np(loss) if isinstance(loss, t.Tensor) else loss, dtype=self.dtype)},
            "gradients": raw,
            "processed_gradients": seen["processed_gradients"],
            "learning_rate": seen["learning_rate"],
            "parameters": seen["parameters"],
            "slots": self._slots(),
        }
        if self._buffers:
            out["state"] = {n: self._np(b) for n, b in self._buffers.items()}
        written = [n for n, p in self._params.items() if p._version != seen["versions"][n]]
        if written or self.report_constrained:
            # the parameters a post-step constraint (ours or inside the user's train_step) wrote to
            out["constrained"] = {n: self._np(self._params[n]) for n in written}
        return {stage: arrays for stage, arrays in out.items() if arrays}

    def _textbook_step(self, xb):
        self.opt.zero_grad()
        loss = self._forward_loss(xb)
        loss.backward()
        self.opt.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss

    def _slots(self) -> dict[str, np.ndarray]:
        out = {}
        for g in self.opt.param_groups:
            for p in g["params"]:
                name = self._pnames[id(p)]
                for key, value in self.opt.state.get(p, {}).items():
                    if key == "step" or not isinstance(value, self.t.Tensor) or tuple(value.shape) != tuple(p.shape):
                        continue
                    out[f"{name}/{SLOT_NAMES.get(key, key)}"] = self._np(value)
        if "Adam" in type(self.opt).__name__ and self.opt.param_groups and self.opt.param_groups[0]["params"]:
            # TF1 AdamOptimizer's beta1_power / beta2_power after t updates: beta^(t+1)
            g = self.opt.param_groups[0]
            st = self.opt.state.get(g["params"][0], {})
            if "step" in st:
                steps = float(st["step"])
                b1, b2 = g["betas"]
                out["beta1_power"] = np.asarray(math.pow(float(b1), steps + 1), dtype=self.dtype)
                out["beta2_power"] = np.asarray(math.pow(float(b2), steps + 1), dtype=self.dtype)
        return out
