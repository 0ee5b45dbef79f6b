"""A Keras program with several models and several optimizers (a GAN): ``"model": {"generator": g,
"discriminator": d}`` (or a list), ``"optimizer": {"discriminator": d_opt, "generator": g_opt}`` (or a list; left
out: the optimizers the models were compiled with), and the ``"train_step"`` that trains them: two
``tf.GradientTape`` s and each optimizer's ``apply_gradients``, as the TensorFlow DCGAN tutorial writes it, or
``train_on_batch`` of each compiled sub-model (Keras 3: ``optimizer.apply(grads, variables)`` too); or one ``keras.Model`` whose own ``train_step`` applies several
optimizers (``"model": gan, "optimizer": {...}, "fit": True``: each step one ``train_on_batch``). Each ``apply_gradients``
(Keras 3: or ``apply``) the step calls is one *phase*, numbered
1, 2 ... in call order (docs/own-model.md, "Several optimizers / a hand-written update"); ``parity.program.port``
names its tensors ``phase<k>/<tensor>`` and pairs the phases of the two programs by order, as for TF1's train
ops and torch's ``optimizer.step()`` calls.

Per phase: its loss (the sum of the targets ``tape.gradient`` was called on since the previous phase), the raw
gradients (what the tape returned), the processed ones (what ``apply_gradients`` received, after the
optimizer's own clipping) and the rate, read before the update; the variables it applied to and their slots,
read after it. The layer outputs are phase 1's (those recorded before the first ``apply_gradients``); the
non-trainable weights (BatchNorm statistics) are read after the last phase. Each weight is named
``<label>/<layer>/<weight>`` by the dict's label (``discriminator/dense/kernel``); one model's sub-models by
their names (``discriminator/dense/kernel`` in a keras.Model GAN, tf_keras and Keras 3 alike). ``tf.function`` s (a
decorated step, Keras' compiled ``train_on_batch``) run eagerly while parity records, so every value is one.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

import numpy as np

from parity.errors import ParityError

from ... import tensorflow
from .analyse import PROGRAM_KEYS, _keras_of, _own, leaf_layers
from .dropout import is_driven
from ...v1.capture.dtype import fused_batch_norm_convention
from .dtype import batch_norm_note, float64_hyper
from .forward import Recording, wrap_layers
from .optimizer import applied, build_slots, learning_rate, read_slots

__all__ = ["several", "PhasedKerasProgram"]


def several(program: Mapping[str, Any]) -> bool:
    """Whether ``program`` names several models or several optimizers (a dict or a list)."""
    return isinstance(program, Mapping) and (isinstance(program.get("model"), (dict, list, tuple))
                                             or isinstance(program.get("optimizer"), (dict, list, tuple)))


def _items(value) -> list:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(value)]
    return [("", value)] if value is not None else []


class _Models:
    """Several Keras models seen as one (what the rest of the capture reads of ``model``): their weights,
    each once, in the order the models are listed, and their layers."""

    name = ""
    inputs: list = []

    def __init__(self, items: list):
        self.items = items

    def _union(self, attr: str) -> list:
        seen, out = set(), []
        for _, m in self.items:
            for w in getattr(m, attr):
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    @property
    def weights(self) -> list:
        return self._union("weights")

    @property
    def trainable_weights(self) -> list:
        # the models' trainable weights, and each weight its layer created trainable: a discriminator frozen
        # (``trainable = False``) for a combined model is still trained by its own train_on_batch
        listed = {id(w) for w in self._union("trainable_weights")}
        for layer in self._flatten_layers():
            listed.update(id(w) for attr in ("_trainable_variables", "_trainable_weights")
                          for w in getattr(layer, attr, None) or ())
        return [w for w in self.weights if id(w) in listed]

    @property
    def non_trainable_weights(self) -> list:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self._union("non_trainable_weights") if id(w) not in trainable]

    def _flatten_layers(self, include_self: bool = False):
        seen = set()
        for _, m in self.items:
            for layer in m._flatten_layers(include_self=False):
                if id(layer) not in seen:
                    seen.add(id(layer))
                    yield layer

    def call(self, *args, **kw):  # wrapped by wrap_layers; never called (the step calls the models)
        return None


class PhasedKerasProgram:
    """The parts of :class:`~.program.KerasProgram` for several models and optimizers (mixed in first)."""

    def __init__(self, program: Mapping[str, Any], dtype: str, where: str):
        tf = tensorflow()
        self.tf, self.dtype, self.where, self._notes = tf, dtype, where, []
        unknown = sorted(set(program) - set(PROGRAM_KEYS))
        if unknown:
            raise ParityError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(PROGRAM_KEYS)}")
        models = _items(program.get("model"))
        bad = [k for k, m in models if not (hasattr(m, "layers") and hasattr(m, "trainable_weights") and callable(m))]
        if bad or not models:
            raise ParityError(f"{where}: 'model' {bad[0] if bad else ''!r} must be a keras.Model (several models: a dict "
                              "{name: model} or a list)")
        for label, m in models:
            if not m.built and not m.weights:  # (a keras.Model GAN is never called itself: its sub-models are built)
                raise ParityError(f"{where}: model {label!r} is not built: give it an Input shape (or call it once)")
        opts = _items(program.get("optimizer")) or [
            (label, m.optimizer) for label, m in models if getattr(m, "optimizer", None) is not None]
        bad = [k for k, o in opts if not callable(getattr(o, "apply_gradients", None))]
        if bad or not opts:
            raise ParityError(f"{where}: 'optimizer' {bad[0] if bad else ''!r} must be a Keras optimizer (several: a dict "
                              "{name: optimizer} or a list; left out: the optimizers the models were compiled with)")
        self.train_step = program.get("train_step")
        if program.get("fit") and self.train_step is None and len(models) == 1:
            # one model whose own train_step applies several optimizers (a keras.Model GAN): fit's train_on_batch
            self.train_step = self._train_on_batch
        if not callable(self.train_step):
            raise ParityError(f"{where}: several models or optimizers need a 'train_step' (a function of the batch that "
                              "calls each optimizer's apply_gradients, or each model's train_on_batch, in the order the "
                              "program trains them); 'fit' only with one model whose own train_step applies them")
        for label, m in models:
            w = m.weights[0] if m.weights else None
            if w is not None and str(getattr(w.dtype, "name", w.dtype)) != dtype:
                from parity.portkit.program import DtypeError

                raise DtypeError(f"{where}: model {label!r} was built in {getattr(w.dtype, 'name', w.dtype)} at import "
                                 f"time and train_step uses it: fix: build the models inside parity_program() (parity "
                                 f"sets floatx to {dtype} first)")
        self.keras, self.fit = _keras_of(models[0][1]), False
        self.data = program.get("data")
        self.input_keys = list(program.get("inputs") or ["x"])
        self.target_keys = list(program.get("targets") or ["y"])
        self.loss = program.get("loss")
        self.models, self.optimizers = models, opts
        self.model, self.optimizer = _Models(models), opts[0][1]
        self._names = self._weight_names(models)
        self.layers = [layer for _, m in models for layer in leaf_layers(m)]
        self.layers = [layer for i, layer in enumerate(self.layers) if all(layer is not o for o in self.layers[:i])]
        names = [layer.name for layer in self.layers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ParityError(f"{where}: two models hold a layer named {twice[0]!r}: give the layers of the models distinct "
                              "names (or leave them unnamed: Keras numbers them), so that each layer output has one name")
        self._dropouts = [layer for layer in self.layers if is_driven(layer)]
        self._rec, self._bn, self._bn_noted = Recording(), [], False
        wrap_layers(self.layers, self._dropouts, self.model, self._rec, tf)
        for i, (_, opt) in enumerate(opts):
            note = float64_hyper(opt, self.layers if i == 0 else [], dtype, self.keras.__name__)
            if note is not None and not any(note in n for n in self._notes):  # the same fix for each optimizer: once
                self._notes.append(note)
        self._slot_vars: dict = {}
        self._phases: list | None = None  # the phases of the step running (None: no step running)
        self._pending: list = []  # the targets tape.gradient was called on since the last phase
        self._raw: dict = {}  # id(variable) -> the last gradient a tape returned for it
        self._cut: set | None = None  # the forward outputs recorded before the first apply_gradients
        self._probe = False  # a probe forward: apply_gradients does nothing
        self._applying: set = set()  # id of the optimizer whose apply runs (its apply_gradients calls apply: one phase)
        for label, opt in opts:
            self._wrap(label, opt)
        labels = ", ".join(label or type(o).__name__ for label, o in opts)
        self._notes.append(f"several optimizers ({labels}): each apply_gradients (or Keras 3 apply) of a step is one "
                           "phase, compared as phase<k>/...")

    @staticmethod
    def _weight_names(models: list) -> dict:
        """id(weight) -> ``<label>/<layer>/<weight>`` (the model's own name left out of the weight's path)."""
        out: dict = {}
        for label, m in models:
            subs: dict = {}  # a sub-model's weights (a keras.Model GAN's generator): under its name
            for layer in m._flatten_layers(include_self=False, recursive=False):
                if hasattr(layer, "layers"):
                    for w in layer.weights:
                        subs.setdefault(id(w), layer.name)
            for w in m.weights:
                if id(w) in out:
                    continue
                name = _own(w)
                if name.startswith(m.name + "/"):
                    name = name[len(m.name) + 1:]
                sub = subs.get(id(w))
                if sub and not name.startswith(sub + "/"):  # (Keras 3's paths hold it already)
                    name = f"{sub}/{name}"
                out[id(w)] = f"{label}/{name}" if label else name
        return out

    def _own(self, weight) -> str:
        return self._names.get(id(weight)) or _own(weight)

    def _lr(self):
        return learning_rate(self.optimizer, self.dtype)

    # -- recording ----------------------------------------------------------------------------------
    def _wrap(self, label: str, opt) -> None:
        """Each ``apply_gradients`` of ``opt`` (and Keras 3's ``apply(grads, variables)``, called directly or by
        ``apply_gradients``: one phase either way) records one phase while a step runs."""
        original = opt.apply_gradients
        prog = self

        def apply_gradients(grads_and_vars, *args, **kw):
            pairs = list(grads_and_vars)
            if id(opt) in prog._applying or (prog._phases is None and not prog._probe):
                return original(pairs, *args, **kw)
            return prog._phase(opt, pairs, lambda: original(pairs, *args, **kw))

        opt.apply_gradients = apply_gradients
        direct = getattr(opt, "apply", None)
        if not callable(direct) or not hasattr(opt, "_trainable_variables"):
            return  # tf_keras: apply_gradients only

        def apply(grads, trainable_variables=None, *args, **kw):
            if id(opt) in prog._applying or (prog._phases is None and not prog._probe):
                return direct(grads, trainable_variables, *args, **kw)
            grads = list(grads)
            variables = list(trainable_variables) if trainable_variables is not None else (
                list(opt._trainable_variables) if getattr(opt, "built", False) else None)
            if variables is None or len(variables) != len(grads):
                return direct(grads, trainable_variables, *args, **kw)  # (Keras' own error, at the user's call)
            return prog._phase(opt, list(zip(grads, variables)), lambda: direct(grads, trainable_variables, *args, **kw))

        opt.apply = apply

    def _phase(self, opt, pairs: list, update):
        """One phase of the step running: what ``update()`` (the optimizer's own apply) consumes and changes."""
        prog = self
        if prog._cut is None and prog._rec.record is not None:
            prog._cut = set(prog._rec.record["forward"])
        if prog._probe:
            return None
        variables = [v for _, v in pairs]
        rate = learning_rate(opt, prog.dtype)
        grads, processed, lr = applied(opt, pairs, prog._own, rate)
        record: dict = {}
        if prog._pending:
            record["loss"] = {"loss": np.asarray(sum(prog._pending[1:], prog._pending[0]), dtype=prog.dtype)}
        prog._pending = []
        raw = {prog._own(v): prog._raw.pop(id(v)) for v in variables if id(v) in prog._raw}
        record.update({"gradients": raw or grads, "processed_gradients": processed, "learning_rate": lr})
        prog._applying.add(id(opt))
        try:
            out = update()
        finally:
            prog._applying.discard(id(opt))
        record["parameters"] = {prog._own(v): np.asarray(v.numpy()) for v in variables}
        key = (id(opt), tuple(id(v) for v in variables))
        if key not in prog._slot_vars:
            prog._slot_vars[key], notes = build_slots(opt, variables, prog._own)
            prog._notes.extend(n for n in notes if n not in prog._notes)
        record["slots"] = read_slots(prog._slot_vars[key], float(rate))
        prog._phases.append({k: v for k, v in record.items() if v})
        return out

    @contextlib.contextmanager
    def _recording(self, masks, probe: bool):
        """The step's (or the probe's) hooks: the layers record, every tape's gradient is kept, and
        ``tf.function`` s run eagerly (their values are then values)."""
        tf = self.tf
        original = tf.GradientTape.gradient
        prog = self

        def gradient(tape, target, sources, *a, **kw):
            out = original(tape, target, sources, *a, **kw)
            if prog._phases is not None:
                for t in tf.nest.flatten(target):
                    prog._pending.append(np.asarray(np.sum(np.asarray(t)), dtype=prog.dtype))
                for s, g in zip(tf.nest.flatten(sources), tf.nest.flatten(out)):
                    if g is not None:
                        prog._raw[id(s)] = np.asarray(tf.convert_to_tensor(g))
            return out

        eager = tf.config.functions_run_eagerly()
        self._rec.masks, self._rec.record = dict(masks or {}), {"forward": {}}
        self._cut, self._probe, self._pending, self._raw = None, probe, [], {}
        self._phases = None if probe else []
        tf.GradientTape.gradient = gradient
        tf.config.run_functions_eagerly(True)
        try:
            with fused_batch_norm_convention(self.dtype, self._bn):  # as one model's step (docs/stages.md)
                yield
        finally:
            tf.config.run_functions_eagerly(eager)
            tf.GradientTape.gradient = original
            self._probe, self._rec.record = False, None
        if self._bn and not self._bn_noted:
            self._bn_noted = True
            self._notes.append(batch_norm_note(self.dtype, self._bn))

    def _train_on_batch(self, tensors: dict):
        """``fit``'s step of the one model: ``train_on_batch`` on the batch's inputs and targets."""
        xs = [tensors[k] for k in self.input_keys]
        ys = [tensors[k] for k in self.target_keys if k in tensors]
        y = (ys[0] if len(ys) == 1 else ys) if ys else None
        return self.models[0][1].train_on_batch(xs[0] if len(xs) == 1 else xs, y)

    # -- the protocol (what differs from one model's) -------------------------------------------------
    def _forward(self, batch, masks=None) -> dict:
        """The probe: the user's step with every ``apply_gradients`` doing nothing; phase 1's layer outputs.
        The non-trainable weights are put back after it."""
        _, _, tensors = self._split(batch)
        saved = [(w, w.numpy()) for w in self.model.non_trainable_weights]
        try:
            with self._recording(masks, probe=True):
                loss = self.train_step(tensors)
                fwd = dict(self._rec.record["forward"])
                cut = self._cut
            first = self.tf.nest.flatten(loss)[0] if loss is not None else None
            self._probe_loss = float(np.sum(first.numpy())) if hasattr(first, "numpy") else None
            return {k: v for k, v in fwd.items() if cut is None or k in cut}
        finally:
            for w, v in saved:
                w.assign(v)

    def probe_loss(self):
        """The first value the step returned in the last probe (None when it returned none)."""
        return getattr(self, "_probe_loss", None)

    def _step(self, batch, masks=None) -> dict:
        _, _, tensors = self._split(batch)
        with self._recording(masks, probe=False):
            self.train_step(tensors)
            fwd, cut, phases = dict(self._rec.record["forward"]), self._cut, self._phases
        if not phases:
            raise ParityError(f"{self.where}: the step never called the apply_gradients of any of its optimizers "
                              f"({', '.join(type(o).__name__ for _, o in self.optimizers)}); each update is one "
                              "optimizer.apply_gradients(zip(grads, variables)) or, Keras 3, optimizer.apply(grads, variables)")
        out: dict = {"forward": {k: v for k, v in fwd.items() if cut is None or k in cut}, "phases": phases}
        if self.model.non_trainable_weights:
            out["state"] = {self._own(w): w.numpy() for w in self.model.non_trainable_weights}
        return out

    def settings(self) -> dict:
        """The first optimizer's settings (the facts table's), as for TF1's and torch's several optimizers."""
        from .optimizer import settings

        return settings(self.optimizer, self.keras.__name__, float(self._lr()))

    def facts(self) -> dict:
        """The first optimizer's facts (as TF1's and torch's several optimizers), each optimizer's class named."""
        from .facts import facts

        out = facts(self)
        out["optimizer.class"] = ", ".join(f"{label}: {self.keras.__name__}:{type(o).__name__}" if label else
                                           f"{self.keras.__name__}:{type(o).__name__}" for label, o in self.optimizers)
        return out

    def input_specs(self) -> dict:
        return {}  # several models: the batch comes from the program's "data"
