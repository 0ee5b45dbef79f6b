"""The captured Keras program parity drives: :class:`KerasProgram` checks the program's dict, brings
the model to the run's dtype, wraps the layers' and the optimizer's calls to record each stage,
and implements the protocol: ``parameter_specs()``, ``parameters()``, ``load()``, ``step()``
(``fit``'s ``train_on_batch``, the user's ``train_step``, or the default GradientTape step),
``forward()``, ``dropout_sites()``, ``input_specs()``, ``settings()``, ``notes()``, ``close()``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from parity.errors import ParityError

from ... import tensorflow
from ...v1.capture.dtype import fused_batch_norm_convention
from .analyse import _own, check_model, check_training, leaf_layers, weight_kind
from .dropout import dropout_sites, is_driven
from .dtype import _floatx, batch_norm_note, float64_hyper, in_run_dtype
from .forward import Recording, wrap_layers
from .optimizer import build_slots, learning_rate, read_slots, settings, wrap_apply_gradients
from .phases import PhasedKerasProgram, several


class KerasProgram:
    """A user's Keras program, captured (see :mod:`tf_impl.v2.capture`). Use :func:`capture`."""

    framework = "tf2"

    def __new__(cls, program: Mapping[str, Any], dtype: str, where: str):
        # several models or optimizers (a GAN): the phased parts first (:mod:`.phases`)
        return object.__new__(_Phased if cls is KerasProgram and several(program) else cls)

    def __init__(self, program: Mapping[str, Any], dtype: str, where: str):
        tf = tensorflow()
        self.tf, self.dtype, self.where, self._notes = tf, dtype, where, []
        model, self.keras = check_model(program, where)
        self.data = program.get("data")
        self.input_keys = list(program.get("inputs") or ["x"])
        self.target_keys = list(program.get("targets") or ["y"])
        self.train_step = program.get("train_step")
        self.fit = bool(program.get("fit"))
        optimizer, loss = check_training(program, model, self.keras, self.train_step, where)
        model, optimizer = in_run_dtype(model, optimizer, dtype, self.keras, self.train_step, where, self._notes)
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.layers = leaf_layers(model)
        self._dropouts = [l for l in self.layers if is_driven(l)]  # Dropout, SpatialDropout1D/2D/3D
        self._rec = Recording()
        self._bn: list[str] = []
        self._bn_noted = False
        wrap_layers(self.layers, self._dropouts, self.model, self._rec, tf)
        wrap_apply_gradients(self.optimizer, self.model, self._rec, self._own, self._lr)
        note = float64_hyper(self.optimizer, self.layers, self.dtype, self.keras.__name__)
        if note is not None:
            self._notes.append(note)
        self._slot_vars, notes = build_slots(self.optimizer, self.model.trainable_weights, self._own)
        self._notes.extend(notes)
        if self.fit:
            if getattr(model, "optimizer", None) is None or not getattr(model, "compiled_loss", True):
                model.compile(optimizer=optimizer, loss=loss)
            model.run_eagerly = True  # layer outputs as values (fit otherwise traces a tf.function)
            model.train_function = None

    def _own(self, weight) -> str:
        """The weight's own name: ``layer/kernel`` (Keras 3's path without the model's name)."""
        name = _own(weight)
        prefix = self.model.name + "/"
        return name[len(prefix):] if name.startswith(prefix) else name

    def _lr(self):
        return learning_rate(self.optimizer, self.dtype)

    # -- the protocol -------------------------------------------------------------------------------
    def _weights(self):
        return self.model.trainable_weights + self.model.non_trainable_weights

    def parameter_specs(self) -> list:
        from parity.portkit.program import ParamSpec

        owner = {}
        for layer in self.layers:
            for w in layer.weights:
                owner[id(w)] = layer
        out = []
        trainable = {id(w) for w in self.model.trainable_weights}
        ordered = sorted(self._weights(), key=lambda w: [id(x) for x in self.model.weights].index(id(w)))
        for w in ordered:
            layer = owner.get(id(w))
            kind = weight_kind(layer, self._own(w).split("/")[-1])
            out.append(ParamSpec(self._own(w), tuple(w.shape), kind, layer.name if layer else "", id(w) in trainable))
        return out

    def parameters(self) -> dict:
        return {self._own(w): np.asarray(w.numpy()) for w in self._weights()}

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        by = {self._own(w): w for w in self._weights()}
        for name, value in params.items():
            if name not in by:
                raise ParityError(f"{self.where}: no weight {name!r} to load")
            w = by[name]
            value = np.asarray(value)
            if tuple(value.shape) != tuple(w.shape):
                raise ParityError(f"{self.where}: {name} has shape {tuple(w.shape)}, the value to load {value.shape}")
            w.assign(value.astype(self.dtype))

    def _split(self, batch):
        tf = self.tf

        def arr(key):
            if key not in batch:
                raise ParityError(f"{self.where}: the batch has no {key!r} (its keys: {', '.join(sorted(batch))})")
            v = np.asarray(batch[key])
            return v.astype(self.dtype) if v.dtype.kind == "f" else v

        xs = [arr(k) for k in self.input_keys]
        ys = [arr(k) for k in self.target_keys if k in batch]
        x = xs[0] if len(xs) == 1 else xs
        y = (ys[0] if len(ys) == 1 else ys) if ys else None
        return x, y, {k: tf.constant(arr(k)) for k in batch}

    def forward(self, batch, masks=None) -> dict:
        """One training-mode forward pass; the non-trainable weights (BatchNorm statistics) restored after."""
        with _floatx(self.dtype):  # Keras casts float inputs to floatx
            return self._forward(batch, masks)

    def _forward(self, batch, masks=None) -> dict:
        x, _, _ = self._split(batch)
        saved = [(w, w.numpy()) for w in self.model.non_trainable_weights]
        self._rec.masks = dict(masks or {})
        self._rec.record = {"forward": {}}
        try:
            with fused_batch_norm_convention(self.dtype, self._bn):
                self.model(x, training=True)
            return dict(self._rec.record["forward"])
        finally:
            self._rec.record = None
            for w, v in saved:
                w.assign(v)

    def step(self, batch, masks=None) -> dict:
        with _floatx(self.dtype):  # Keras casts float inputs to floatx (train_on_batch)
            return self._step(batch, masks)

    def _step(self, batch, masks=None) -> dict:
        x, y, tensors = self._split(batch)
        self._rec.masks = dict(masks or {})
        self._rec.record = {"forward": {}}
        tape_grads: list = []
        bn = fused_batch_norm_convention(self.dtype, self._bn)
        bn.__enter__()
        try:
            loss = self._train(x, y, tensors, tape_grads)
            rec = self._rec.record
        finally:
            self._rec.record = None
            bn.__exit__(None, None, None)
        from .optimizer import schedule_note

        note = schedule_note(self.optimizer)
        if note and note not in self._notes:
            self._notes.append(note)
        if self._bn and not self._bn_noted:
            self._bn_noted = True
            self._notes.append(batch_norm_note(self.dtype, self._bn))
        return self._stages(rec, loss, tape_grads)

    def _train(self, x, y, tensors: dict, tape_grads: list):
        """One training step as the program takes it; its loss (``tape_grads``: what each tape returned)."""
        tf = self.tf
        if self.fit:
            return self._fit_step(x, y)
        if self.train_step is not None:
            original = tf.GradientTape.gradient

            def gradient(tape, target, sources, *a, **kw):
                out = original(tape, target, sources, *a, **kw)
                tape_grads.append((sources, out))
                return out

            tf.GradientTape.gradient = gradient
            try:
                return self.train_step(tensors)
            finally:
                tf.GradientTape.gradient = original
        with tf.GradientTape() as tape:  # as fit's train_step computes it (docs/stages.md)
            out = self.model(x, training=True)
            self._regularization()
            loss = self._data_loss(y, out)
            if self.model.losses:  # add_loss terms and regularizers, eager values of this call
                loss = tf.add_n(self.model.losses) if loss is None else loss + tf.add_n(self.model.losses)
        if loss is None:
            raise ParityError(f"{self.where}: the model has no loss: neither 'loss' nor add_loss terms")
        grads = tape.gradient(loss, self.model.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_weights))
        return loss

    def _regularization(self) -> None:
        from .optimizer import regularization

        reg = regularization(self.model, self.optimizer, self.dtype, self.tf)
        if reg is not None:
            self._rec.record["regularization"] = {"regularization": np.asarray(reg)}

    def _data_loss(self, y, out):
        """The program's loss on ``out`` reduced as compile reduces it; None for compile without a loss."""
        from .optimizer import reduce_loss

        if not callable(self.loss):  # compile(loss=None): Keras keeps an empty container
            return None
        return reduce_loss(self.loss(y, out), self.tf)

    def _fit_step(self, x, y):
        """``train_on_batch``; the loss its update minimises, as its ``compute_loss`` returned it (the
        reduced data loss + ``model.losses``), and the regularization read in it, before the update."""
        model = self.model
        name = "_compute_loss" if hasattr(model, "_compute_loss") else "compute_loss"  # Keras 3 / tf_keras
        original = getattr(model, name, None)
        seen: list = []
        own = vars(model).get(name)  # an instance attribute of the user's, put back after
        if original is not None:
            import functools

            @functools.wraps(original)
            def compute_loss(*a, **kw):
                value = original(*a, **kw)
                if self._rec.record is not None and not seen:
                    seen.append(value)
                    self._regularization()
                return value

            setattr(model, name, compute_loss)
        try:
            model.train_on_batch(x, y)
        finally:
            if original is not None:
                if own is None:
                    delattr(model, name)
                else:
                    setattr(model, name, own)
        if seen:
            return seen[0]
        # a train_step of the model's own that does not call compute_loss: the loss as compile has it
        loss = self._data_loss(y, self._rec.record["__output__"])
        return loss

    def _stages(self, rec: dict, loss, tape_grads: list) -> dict:
        """The step's stages: what the run recorded, and the weights, slots and state after it."""
        tf = self.tf
        if tape_grads:
            names = {id(v): self._own(v) for v in self.model.trainable_weights}
            sources, grads = tape_grads[-1]
            flat_s, flat_g = tf.nest.flatten(sources), tf.nest.flatten(grads)
            rec["gradients"] = {names[id(s)]: np.asarray(g) for s, g in zip(flat_s, flat_g)
                                if id(s) in names and g is not None}
        out = {"forward": rec["forward"], "loss": {"loss": np.asarray(loss)}}
        for stage in ("regularization", "gradients", "processed_gradients", "learning_rate"):
            if stage in rec:
                out[stage] = rec[stage]
        out["parameters"] = {self._own(w): w.numpy() for w in self.model.trainable_weights}
        slots = read_slots(self._slot_vars, float(self._lr()))
        if slots:
            out["slots"] = slots
        if self.model.non_trainable_weights:
            out["state"] = {self._own(w): w.numpy() for w in self.model.non_trainable_weights}
        return out

    def dropout_sites(self) -> list:
        return dropout_sites(self._dropouts, self._rec.shapes, self.where)

    def input_specs(self) -> dict:
        inputs = getattr(self.model, "inputs", None) or []
        out = {}
        for key, t in zip(self.input_keys, inputs):
            out[key] = (tuple(None if d is None else int(d) for d in t.shape), self.dtype)
        return out

    def data_source(self):
        return self.data

    def settings(self) -> dict:
        return settings(self.optimizer, self.keras.__name__, float(self._lr()))

    def facts(self) -> dict:
        """The program's facts, read from its objects (:mod:`.facts`; compared in :mod:`parity.program.facts`)."""
        from .facts import facts

        return facts(self)

    def forward_kinds(self) -> dict[str, str]:
        """Each recorded layer output's kind (conv, dense, relu, dropout ...), for the structural pairing."""
        return dict(self._rec.kinds)

    def notes(self) -> list[str]:
        # the recording's own notes too (an AlphaDropout, a draw not driven)
        return list(self._notes) + [n for n in self._rec.notes if n not in self._notes]

    def close(self) -> None:
        self._rec.record = None


class _Phased(PhasedKerasProgram, KerasProgram):
    """A Keras program with several models or optimizers (:mod:`.phases`): one phase per ``apply_gradients``."""
