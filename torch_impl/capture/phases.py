"""Program forms without exactly one ``torch.optim`` optimizer (docs/own-model.md, "Several optimizers /
a hand-written update"):

* a **hand-written update**: a ``train_step`` and no ``"optimizer"`` (``loss.backward()`` then
  ``p.data.add_(p.grad, alpha=-lr)`` for each parameter). What can be seen is recorded: the forward
  outputs, the loss, each parameter's ``.grad`` after ``backward()`` (raw gradients), the parameters
  after the step (so the update, as the parameters' difference from the same start). What cannot be
  seen (the rate, optimizer slots, the gradient the update consumed after a clip) is not reported:
  the notes say so, and those stages are listed as not compared.
* **several optimizers in one step** (a GAN: ``"optimizer": {"D": opt_d, "G": opt_g}`` or a list, and
  ``"model": {"D": netD, "G": netG}`` or a list): each ``optimizer.step()`` the ``train_step`` calls is
  one *phase*, numbered 1, 2 ... in call order (a G stepped twice is two phases). Per phase: its loss
  (the sum of the scalars ``backward()`` was called on since the previous phase), the raw and processed
  gradients, the rate, the parameters after it and the slots, of the parameters that phase's optimizer
  holds. ``parity.program.port`` names them ``phase<k>/<tensor>``.

:func:`program_forms` turns such a dict into one the capture takes (stand-in optimizer objects, a
``ModuleDict`` of several models); :class:`PhaseRecorder` records a step's phases.
"""

from __future__ import annotations

import contextlib

import numpy as np

from parity.errors import ParityError

from .. import torch as _torch

__all__ = ["program_forms", "is_standin", "phases_of", "PhaseRecorder", "HAND_WRITTEN_NOTE"]

HAND_WRITTEN_NOTE = ("hand-written update (a train_step and no torch.optim optimizer): the loss, the raw gradients "
                     "(.grad after backward()) and the parameters after each step (the update) are compared; the "
                     "learning rate, optimizer slots and the gradient the update consumed (after a clip) cannot be "
                     "seen and are not compared")

_CLASSES: dict = {}


def _standin_class(t):
    """A ``torch.optim.Optimizer`` subclass standing for a hand-written update or several optimizers: it holds
    the parameters they train (``param_groups``) so that the capture sees them; parity never steps it."""
    if "cls" not in _CLASSES:
        class Update(t.optim.Optimizer):
            """Stand-in: ``phases`` is ``[(label, optimizer)]`` (empty: a hand-written update)."""

            def __init__(self, groups, phases):  # noqa: D401  (no Optimizer.__init__: nothing of its own to step)
                self.param_groups, self.phases, self.state, self.defaults = groups, phases, {}, {}

            def step(self, closure=None):  # never called: the user's train_step steps its own optimizers
                raise ParityError("parity's stand-in optimizer was stepped; this is a bug in parity")

            def zero_grad(self, set_to_none=True):
                for _, opt in self.phases:
                    opt.zero_grad(set_to_none=set_to_none)

            def state_dict(self):
                return {label: opt.state_dict() for label, opt in self.phases}

            def load_state_dict(self, state):
                for label, opt in self.phases:
                    opt.load_state_dict(state[label])

        _CLASSES["cls"] = Update
    return _CLASSES["cls"]


def is_standin(opt) -> bool:
    return "cls" in _CLASSES and isinstance(opt, _CLASSES["cls"])


def phases_of(opt) -> list:
    """``[(label, optimizer)]``: the optimizers a stand-in holds; ``[("", opt)]`` for a plain optimizer."""
    return list(opt.phases) if is_standin(opt) else [("", opt)]


def program_forms(objs, where: str):
    """The dict ``parity_program()`` returned, with a hand-written update or several optimizers (and models)
    given as the objects the capture takes; any other dict unchanged.

    Raises:
        ParityError: several optimizers without a ``train_step`` (parity cannot know their order), a model or
            an optimizer of the wrong kind in a dict or list.
    """
    if not isinstance(objs, dict):
        return objs
    t = _torch()
    out = dict(objs)
    models = objs.get("model")
    if isinstance(models, (dict, list, tuple)):
        items = list(models.items()) if isinstance(models, dict) else [(str(i), m) for i, m in enumerate(models)]
        bad = [k for k, m in items if not isinstance(m, t.nn.Module)]
        if bad or not items:
            raise ParityError(f"{where}: 'model' {bad[0] if bad else ''!r} must be a torch.nn.Module (several models: a "
                              "dict {name: module} or a list)")
        out["model"] = t.nn.ModuleDict(dict(items))
    opts = objs.get("optimizer")
    step = objs.get("train_step")
    if opts is None and callable(step):
        params = [p for p in out["model"].parameters() if p.requires_grad] if isinstance(out.get("model"), t.nn.Module) else []
        if params:
            out["optimizer"] = _standin_class(t)([{"params": params}], [])
    elif isinstance(opts, (dict, list, tuple)):
        items = list(opts.items()) if isinstance(opts, dict) else [(str(i), o) for i, o in enumerate(opts)]
        bad = [k for k, o in items if not isinstance(o, t.optim.Optimizer)]
        if bad or not items:
            raise ParityError(f"{where}: 'optimizer' {bad[0] if bad else ''!r} must be a torch.optim.Optimizer (several "
                              "optimizers: a dict {name: optimizer} or a list)")
        if not callable(step):
            raise ParityError(f"{where}: several optimizers need a 'train_step' (it calls each optimizer's step() in "
                              "the order the program trains them)")
        out["optimizer"] = _standin_class(t)([g for _, o in items for g in o.param_groups], items)
    return out


class PhaseRecorder:
    """Hooks recording one step of a program whose optimizers are a stand-in (several, or none).

    ``phases``: one record per ``optimizer.step()`` of the program's optimizers, in call order: ``{"loss",
    "gradients", "processed_gradients", "learning_rate", "parameters", "slots"}``; ``losses``: the scalars
    ``backward()`` was called on (all of the step)."""

    def __init__(self, prog, acts: dict):
        from . import optimizer as _optimizer

        self.prog, self._opt, self.acts = prog, _optimizer, acts
        self.cut = None  # the forward outputs recorded before the first step() (phase 1's: what TF1 records)
        self._depth: dict = {}  # id(optimizer) -> step() calls open (a subclass calling super().step())
        self.phases: list[dict] = []
        self.losses: list = []
        self._phase_losses: list = []
        self.raw: dict = {}

    def _owned(self, opt) -> dict:
        ids = {id(p) for g in opt.param_groups for p in g["params"]}
        return {n: p for n, p in self.prog._params.items() if id(p) in ids}

    @contextlib.contextmanager
    def recording(self):
        prog, t = self.prog, self.prog.t
        handles = []

        def on_grad(name):
            def hook(p):
                if p.grad is not None:
                    self.raw[name] = prog._np(p.grad)
            return hook

        handles += [p.register_post_accumulate_grad_hook(on_grad(n)) for n, p in prog._params.items() if p.requires_grad]
        for label, opt in phases_of(prog.opt):
            if is_standin(opt) or not isinstance(opt, t.optim.Optimizer):
                continue
            handles.append(opt.register_step_pre_hook(self._pre(label)))
            handles.append(opt.register_step_post_hook(self._post(label)))
        recorder = self

        class Backward(t.overrides.TorchFunctionMode):
            """Every ``backward()`` of the step: the scalar it differentiates is (part of) that phase's loss."""

            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if func is t.Tensor.backward and args and isinstance(args[0], t.Tensor) and args[0].numel() == 1:
                    value = prog._np(args[0]).reshape(())
                    recorder.losses.append(value)
                    recorder._phase_losses.append(value)
                return func(*args, **kwargs)

        try:
            with Backward():
                yield self
        finally:
            for h in handles:
                h.remove()

    def _pre(self, label):
        def hook(opt, args, kwargs):
            # an optimizer subclass whose step() calls super().step() runs the hooks twice: one phase
            depth = self._depth.get(id(opt), 0)
            self._depth[id(opt)] = depth + 1
            if depth:
                return
            prog = self.prog
            if self.cut is None:
                self.cut = set(self.acts)
            decay = self._opt.decay_of(opt)
            owned = self._owned(opt)
            record: dict = {"label": label}
            if self._phase_losses:
                record["loss"] = {"loss": np.asarray(sum(self._phase_losses[1:], self._phase_losses[0]), dtype=prog.dtype)}
            self._phase_losses = []
            wd_of = lambda p: decay.get(id(p), (0.0, 0.0))[0]  # noqa: E731  (a coupled decay's wd*w, docs/stages.md)
            with prog.t.no_grad():
                record["gradients"] = {n: self.raw[n] + wd_of(p) * prog._np(p) if wd_of(p) else self.raw[n]
                                       for n, p in owned.items() if n in self.raw}
                record["processed_gradients"] = {n: prog._np(p.grad + wd_of(p) * p.detach() if wd_of(p) else p.grad)
                                                 for n, p in owned.items() if p.grad is not None}
            groups = opt.param_groups
            lr = {}
            for g in groups:
                for p in g["params"]:
                    name = prog._pnames[id(p)]
                    if len(groups) > 1:
                        lr[f"{name}/lr"] = np.asarray(float(g["lr"]), dtype=prog.dtype)
                    wd = decay.get(id(p), (0.0, 0.0))[1]
                    if wd:
                        lr[f"{name}/decoupled_decay"] = np.asarray(float(g["lr"]) * wd, dtype=prog.dtype)
            if len(groups) == 1:
                lr["lr"] = np.asarray(float(groups[0]["lr"]), dtype=prog.dtype)
            record["learning_rate"] = lr
            self.phases.append(record)
        return hook

    def _post(self, label):
        def hook(opt, args, kwargs):
            self._depth[id(opt)] = self._depth.get(id(opt), 1) - 1
            if self._depth[id(opt)]:
                return  # the inner step() of a subclass: the outer one ends the phase
            prog = self.prog
            record = self.phases[-1]
            record["parameters"] = {n: prog._np(p) for n, p in self._owned(opt).items()}
            record["slots"] = self._opt.slots(_OneOptimizer(prog, opt))
            for n in self._owned(opt):  # the next phase's raw gradients are its own backward's
                self.raw.pop(n, None)
        return hook


class _OneOptimizer:
    """``prog`` seen with one of its optimizers (what :func:`.optimizer.slots` reads)."""

    def __init__(self, prog, opt):
        self.opt, self._pnames, self._np, self.dtype, self.t = opt, prog._pnames, prog._np, prog.dtype, prog.t
