"""The captured program object, :class:`TorchProgram`: the user's model, optimizer, loss and step
behind the interface parity drives (``parameter_specs()``, ``parameters()``, ``load()``,
``forward()``, ``step()``, ``settings()``, ``notes()`` ...). It converts parity's channel-last numpy
batches to torch tensors, runs the user's ``train_step`` (or the textbook zero_grad / forward /
backward / step / scheduler step) and a post-step constraint under the recording of
:mod:`.forward` and :mod:`.optimizer`, and turns a failure of the user's code into a PortError.
"""

from __future__ import annotations

import numpy as np

from parity.errors import ParityError, PortError
from parity.portkit.program import DropoutSite, ParamSpec

from .. import device, torch as _torch
from . import adapt as _adapt
from . import optimizer as _optimizer
from . import phases as _phases
from .phases import program_forms  # noqa: F401  (parity.program.load applies it to the program's dict)
from .analyse import Contents, parameter_specs
from .dtype import torch_dtype
from .forward import canonical_activations, recording

__all__ = ["TorchProgram", "user_call", "program_forms"]


def user_call(phase: str, fn, *args):
    """``fn(*args)``, the user's code: its failure is a PortError (a crash of the program, not bad input),
    caused by the exception (where a crash of parity's own capture code under the user's call is told
    apart: :func:`parity.run.boundary.parity_fault`, exit 4)."""
    try:
        return fn(*args)
    except ParityError:
        raise
    except Exception as exc:  # the user's own code failed: a crash of the program, not bad input
        raise PortError("torch", phase, exc) from exc


class TorchProgram:
    """A captured PyTorch program (the CapturedProgram of PROGRAMS-INTERFACE.md)."""

    framework = "torch"

    def __init__(self, model, optimizer, loss, *, dtype, scheduler=None, train_step=None, constraint=None,
                 inputs=("x",), targets=None, data=None, where="the torch program"):
        t = _torch()
        self.t, self.dtype, self.where = t, dtype, where
        self.model = model.to(device=device(), dtype=torch_dtype(dtype))
        if isinstance(loss, t.nn.Module):
            loss.to(device=device(), dtype=torch_dtype(dtype))
        self.opt, self.loss_fn, self.scheduler = optimizer, loss, scheduler
        self.train_step, self.constraint = train_step, constraint
        self.inputs, self.targets, self.data_fn = list(inputs), targets, data
        self.report_constrained = constraint is not None
        self._contents = held = Contents(self.model, optimizer, where, t)
        self._params, self._pnames, self._buffers = held.params, held.pnames, held.buffers
        self._in_opt, self._owner, self._leaves = held.in_opt, held.owner, held.leaves
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
                tt = tt.to(torch_dtype(self.dtype))
            elif np.issubdtype(arr.dtype, np.integer):
                tt = tt.long()
            out[k] = tt.to(device())
        adapt = _adapt.ADAPTED.get(self.where)
        return _adapt.apply(adapt, out, self.t, torch_dtype(self.dtype)) if adapt else out

    def _choose_adaptation(self, batch) -> None:
        """At the first probe of this file: the batch adapted to what the port's model and loss take, if
        they fail on it as it is (:mod:`.adapt`); said in a note. Not with the user's own ``train_step``."""
        if self.where in _adapt.ADAPTED:
            return
        if self.train_step is not None or self.loss_fn is None:
            _adapt.ADAPTED[self.where] = {}
            return
        xb = self._tensors(batch)
        chosen = _adapt.choose(self.model, self._forward_loss, xb, self.inputs, self._target_keys(xb), self.t,
                               torch_dtype(self.dtype), self.where)
        _adapt.ADAPTED[self.where] = chosen
        for _, _, why in chosen.values():
            self._note(f"batch adapted to the port: {why}")

    def _target_keys(self, xb) -> list:
        return list(self.targets) if self.targets is not None else [k for k in xb if k not in self.inputs][:1]

    def _recording(self, acts: dict, masks):
        """Hooks on every leaf module (outputs in call order) + the function mode (dropout, flatten)."""
        return recording(self, acts, masks)

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
        return parameter_specs(self._contents, self._order)

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
            user_call("forward", self._choose_adaptation, batch)
            if self.train_step is not None:  # the probe goes through the user's own step, without updating
                self._acts, self._cut = acts, None
                with self._recording(acts, masks):
                    loss = user_call("train_step", self._probe_train_step, self._tensors(batch))
                if self._cut is not None:  # several optimizers: the outputs before the first step() (phase 1)
                    acts = {k: v for k, v in acts.items() if k in self._cut}
                self._acts = None
                self._probe_loss = float(loss.detach().cpu()) if isinstance(loss, self.t.Tensor) and loss.numel() == 1 else None
                return self.canonical_activations(acts)
            with self._recording(acts, masks), self.t.no_grad():
                xb = self._tensors(batch)
                if self.loss_fn is not None:
                    loss = user_call("forward", self._forward_loss, xb)
                    self._probe_loss = float(loss.detach().cpu()) if isinstance(loss, self.t.Tensor) and loss.numel() == 1 else None
                else:
                    self._probe_loss = None
                    user_call("forward", self.model, *[xb[k] for k in self.inputs])
        finally:
            bufs = dict(self.model.named_buffers())
            with self.t.no_grad():
                for n, b in saved.items():
                    bufs[n].copy_(b)
        return self.canonical_activations(acts)

    def _probe_train_step(self, xb):
        """The user's ``train_step(xb)`` with nothing kept: ``optimizer.step`` / ``zero_grad`` and the
        scheduler's ``step`` do nothing while it runs; the parameters, their gradients and the optimizer's
        and scheduler's state are put back afterwards (buffers: by :meth:`forward`)."""
        import copy

        t = self.t
        params = {n: p.detach().clone() for n, p in self._params.items()}
        grads = {n: None if p.grad is None else p.grad.detach().clone() for n, p in self._params.items()}
        opt_state = copy.deepcopy(self.opt.state_dict())
        sched_state = copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None
        opts = [o for _, o in _phases.phases_of(self.opt)]
        muted = [(o, m) for o in opts for m in ("step", "zero_grad")] + ([(self.scheduler, "step")] if self.scheduler is not None else [])

        def cut(*a, **k):  # the first optimizer.step() ends phase 1's forward outputs
            if self._cut is None and _phases.phases_of(self.opt) and _phases.is_standin(self.opt):
                self._cut = set(getattr(self, "_acts", {}))

        for obj, name in muted:
            setattr(obj, name, cut if name == "step" else (lambda *a, **k: None))
        try:
            with t.enable_grad():
                return self.train_step(xb)
        finally:
            for obj, name in muted:
                if name in vars(obj):
                    delattr(obj, name)
            with t.no_grad():
                for n, p in self._params.items():
                    p.copy_(params[n])
                    p.grad = grads[n]
            self.opt.load_state_dict(opt_state)
            if sched_state is not None:
                self.scheduler.load_state_dict(sched_state)

    def canonical_activations(self, acts: dict) -> dict:
        """4-D outputs NCHW -> NHWC (a flattened output was reordered to (h, w, c) when recorded)."""
        return canonical_activations(acts)

    def forward_kinds(self) -> dict[str, str]:
        """Each recorded output's kind (conv, dense, relu, dropout ... and F.* calls), for the structural pairing."""
        return dict(getattr(self, "_forward_kinds", {}))

    def probe_loss(self):
        """The loss of the last forward() (None when the program gives no loss function)."""
        return getattr(self, "_probe_loss", None)

    def dropout_sites(self) -> list[DropoutSite]:
        return list(self._sites)

    def settings(self) -> dict:
        phases = _phases.phases_of(self.opt)
        if not phases:  # a hand-written update: no optimizer to read
            return {"framework_convention": "torch", "train_mode": bool(self.model.training)}
        return _optimizer.settings(phases[0][1], self.scheduler, self.model)

    def facts(self) -> dict:
        """The program's facts, read from its objects (:mod:`.facts`; compared in :mod:`parity.program.facts`);
        with several optimizers, the first one's; a hand-written update's rate and optimizer are unknown."""
        from .facts import facts

        if not _phases.is_standin(self.opt):
            return facts(self)
        standin, phases = self.opt, _phases.phases_of(self.opt)
        self.opt = phases[0][1] if phases else standin
        try:
            out = facts(self)
        finally:
            self.opt = standin
        if not phases:
            for k in [k for k in out if k.split(".")[0] in ("lr", "weight_decay", "optimizer")]:
                del out[k]
            out.update({"optimizer": "unknown", "optimizer.class": "hand-written update in its train_step", "lr": "unknown"})
        else:
            out["optimizer.class"] = ", ".join(f"{label}: torch:{type(o).__name__}" for label, o in phases)
        return out

    def notes(self) -> list[str]:
        notes = list(self._notes)
        if _phases.is_standin(self.opt):
            phases = _phases.phases_of(self.opt)
            notes.append(f"several optimizers ({', '.join(label for label, _ in phases)}): each optimizer.step() of a "
                         "step is one phase, compared as phase<k>/..." if phases else _phases.HAND_WRITTEN_NOTE)
        if any(isinstance(m, self.t.nn.modules.batchnorm._BatchNorm) for _, m in self._leaves):
            notes.append("BatchNorm num_batches_tracked is not compared (TF keeps no counter)")
        return notes

    def close(self) -> None:
        self._current = []

    def step(self, batch, masks=None) -> dict[str, dict[str, np.ndarray]]:
        t = self.t
        if _phases.is_standin(self.opt):
            return self._phased_step(batch, masks)
        acts: dict[str, np.ndarray] = {}
        raw: dict[str, np.ndarray] = {}
        seen: dict[str, dict] = {}
        with _optimizer.recording_step(self, raw, seen), self._recording(acts, masks):
            xb = self._tensors(batch)
            if self.train_step is not None:
                loss = user_call("train_step", self.train_step, xb)
            else:
                loss = user_call("step", self._textbook_step, xb)
            if self.constraint is not None:
                with t.no_grad():
                    user_call("constraint", self.constraint)
        if "parameters" not in seen:
            raise ParityError(f"{self.where}: the step never called optimizer.step()")
        if not isinstance(loss, t.Tensor) and not isinstance(loss, (float, int)):
            raise ParityError(f"{self.where}: train_step must return the loss, got {type(loss).__name__}")
        return self._step_records(acts, raw, seen, loss)

    def _step_records(self, acts: dict, raw: dict, seen: dict, loss) -> dict[str, dict[str, np.ndarray]]:
        """The stages of one step, from what the hooks saw; empty stages left out."""
        t = self.t
        value = np.asarray(self._np(loss) if isinstance(loss, t.Tensor) else loss, dtype=self.dtype)
        reg = seen.get("regularization")
        out = {"forward": self.canonical_activations(acts)}
        if reg is not None:
            # the loss the update minimises: the data loss + the coupled decay's wd/2*||w||^2 (docs/stages.md);
            # the regularisation term compared on its own when the data loss is known to hold none
            value = np.asarray(value + reg, dtype=self.dtype)
            if self.train_step is None and getattr(self, "_loss_separable", False):
                out["regularization"] = {"regularization": np.asarray(reg, dtype=self.dtype)}
        out.update({
            "loss": {"loss": value},
            "gradients": raw,
            "processed_gradients": seen["processed_gradients"],
            "learning_rate": seen["learning_rate"],
            "parameters": seen["parameters"],
            "slots": self._slots(),
        })
        out["state"] = self._state()
        written = [n for n, p in self._params.items() if p._version != seen["versions"][n]]
        if written or self.report_constrained:
            # the parameters a post-step constraint (ours or inside the user's train_step) wrote to
            out["constrained"] = {n: self._np(self._params[n]) for n in written}
        return {stage: arrays for stage, arrays in out.items() if arrays}

    def _phased_step(self, batch, masks) -> dict:
        """One step of a program with several optimizers or a hand-written update (:mod:`.phases`):
        ``{"forward", "state", "constrained"?, "phases": [per-phase stages]}``; a hand-written update's
        stages (loss, raw gradients, parameters) at the top level instead of ``phases``."""
        t = self.t
        acts: dict[str, np.ndarray] = {}
        rec = _phases.PhaseRecorder(self, acts)
        with rec.recording(), self._recording(acts, masks):
            loss = user_call("train_step", self.train_step, self._tensors(batch))
            if self.constraint is not None:
                with t.no_grad():
                    user_call("constraint", self.constraint)
        if rec.cut is not None:  # several optimizers: the forward outputs of phase 1 (before its step())
            acts = {k: v for k, v in acts.items() if k in rec.cut}
        out: dict = {"forward": self.canonical_activations(acts)}
        if _phases.phases_of(self.opt):
            if not rec.phases:
                raise ParityError(f"{self.where}: the step never called the step() of any of its optimizers")
            out["phases"] = [{k: v for k, v in p.items() if k != "label" and v} for p in rec.phases]
        else:  # hand-written: what it returned (else what backward() was called on), .grad after backward, the parameters
            if isinstance(loss, t.Tensor) and loss.numel() == 1:
                out["loss"] = {"loss": np.asarray(self._np(loss), dtype=self.dtype).reshape(())}
            elif rec.losses:
                out["loss"] = {"loss": np.asarray(sum(rec.losses[1:], rec.losses[0]), dtype=self.dtype)}
            out["gradients"] = {n: v for n, v in rec.raw.items() if id(self._params[n]) in self._in_opt}
            out["parameters"] = {n: self._np(p) for n, p in self._params.items() if id(p) in self._in_opt}
        out["state"] = self._state()
        return {stage: arrays for stage, arrays in out.items() if arrays}

    def _textbook_step(self, xb):
        self.opt.zero_grad()
        outs: list = []
        hook = self.model.register_forward_hook(lambda m, a, o: outs.append(o))
        try:
            loss = self._forward_loss(xb)
        finally:
            hook.remove()
        # a loss function that reads the parameters itself holds a hand-written regularisation term:
        # then only the total loss is compared (docs/stages.md)
        flat = outs[-1] if outs and isinstance(outs[-1], (tuple, list)) else outs[-1:]
        self._loss_separable = not _optimizer.loss_reads_parameters(
            loss, [o for o in flat if isinstance(o, self.t.Tensor)], list(self._params.values()))
        if not self._loss_separable:
            self._note("regularization: the loss function reads the parameters itself (a hand-written term): its "
                       "regularisation is not compared on its own; the total loss and its gradients are")
        loss.backward()
        self.opt.step()
        if self.scheduler is not None:
            note = _optimizer.scheduler_note(self)
            if note:
                self._note(note)
            _optimizer.step_scheduler(self)  # in its own unit: per epoch or per step
        return loss

    def _state(self) -> dict[str, np.ndarray]:
        """The model state after a step: the float buffers, and the parameters no optimizer holds (a GAN's
        generator in its discriminator's step), as TF1 reports every variable no train op updates."""
        out = {n: self._np(p) for n, p in self._params.items() if id(p) not in self._in_opt}
        out.update({n: self._np(b) for n, b in self._buffers.items()})
        return out

    def _slots(self) -> dict[str, np.ndarray]:
        return _optimizer.slots(self)
