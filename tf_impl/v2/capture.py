"""Capture a Keras program (tf_keras or Keras 3, eager) as its author wrote it, and record every stage.

The user's ``parity_program()`` returns ``{"model": model, "optimizer": opt, "loss": loss}``
and optionally ``"fit": True`` (one ``train_on_batch`` per step, what ``fit`` runs per batch),
or ``"train_step"`` (the user's GradientTape step, called with the batch dict of tensors),
``"inputs"`` / ``"targets"`` (batch keys, default ``["x"]`` / ``["y"]``) and ``"data"``.

Where each stage comes from (nothing of the user's code is edited):

* forward: every leaf layer's output, in call order, by layer name: each layer's ``call``
  is wrapped on the instance for the run (``fit`` runs eagerly so the outputs are values).
* gradients: what ``tf.GradientTape.gradient`` returned for the trainable weights in a
  user ``train_step`` (before any clipping the step does); with ``fit`` or the default
  step, the gradients handed to ``optimizer.apply_gradients``.
* processed gradients and learning rate: the arguments of ``optimizer.apply_gradients``
  (wrapped on the instance), after the optimizer's own ``clipnorm`` / ``clipvalue`` /
  ``global_clipnorm`` where set; the rate the optimizer holds at that moment.
* parameters, slots, state: trainable weights, the optimizer's slot variables (canonical
  names: ``m``, ``v``, ``momentum``, ``ms``, ``mg``, ``accumulator``) and the non-trainable
  weights (BatchNorm moving statistics) after the step. A Keras SGD velocity
  ``v = mu*v - lr*g`` is reported as ``-v/lr``, TF1's and torch's momentum accumulator.

Dropout: each ``Dropout`` layer's ``call`` becomes ``x * mask / (1 - rate)`` with parity's
keep mask when training (the identity without a mask), so both frameworks drop the same units.

float64: Keras builds layers in ``floatx``; the adapter sets floatx to the run's dtype
before calling ``parity_program()``. A model built at import time keeps its dtype: it is
rebuilt from its config with every float32 made float64 (weights copied), unless the
program has its own ``train_step`` (which holds the original model): then the run is
refused with the fix (build the model inside ``parity_program()``). tf_keras casts
Python-float hyper-parameters through float32 (``tf.cast(0.9, tf.float64)`` is
0.8999999762: SGD momentum, Adam betas, BatchNormalization momentum); in float64 the
adapter hands them over as float64 numbers (a note lists them). BatchNormalization keeps
the fused kernel's moving-variance convention in float64, as in the TF1 adapter.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Mapping

import numpy as np

from parity.errors import ParityError

from .. import tensorflow
from ..v1.capture import _shortest, fused_batch_norm_convention

__all__ = ["capture", "KerasProgram", "PROGRAM_KEYS"]

PROGRAM_KEYS = ("model", "optimizer", "loss", "train_step", "fit", "inputs", "targets", "data")
#: optimizer attribute holding per-variable slots -> canonical slot name (by optimizer family)
_SLOT_LISTS = {
    "sgd": {"momentums": "momentum"},
    "rmsprop": {"_velocities": "ms", "_momentums": "momentum", "_average_gradients": "mg"},
    "adagrad": {"_accumulators": "accumulator"},
    "": {"_momentums": "m", "_velocities": "v", "_velocity_hats": "vhat"},
}
_KINDS = {  # (layer class, weight leaf) -> ParamSpec kind
    ("Dense", "kernel"): "dense_kernel", ("Conv1D", "kernel"): "conv_kernel", ("Conv2D", "kernel"): "conv_kernel",
    ("Conv3D", "kernel"): "conv_kernel", ("DepthwiseConv2D", "depthwise_kernel"): "conv_kernel",
    ("BatchNormalization", "gamma"): "bn_gamma", ("BatchNormalization", "beta"): "bn_beta",
    ("BatchNormalization", "moving_mean"): "bn_mean", ("BatchNormalization", "moving_variance"): "bn_var",
    ("LayerNormalization", "gamma"): "ln_gamma", ("LayerNormalization", "beta"): "ln_beta",
    ("Embedding", "embeddings"): "embedding", ("LSTM", "kernel"): "lstm_kernel",
    ("LSTM", "recurrent_kernel"): "lstm_recurrent", ("LSTM", "bias"): "lstm_bias",
    ("LSTMCell", "kernel"): "lstm_kernel", ("LSTMCell", "recurrent_kernel"): "lstm_recurrent",
    ("LSTMCell", "bias"): "lstm_bias",
}


def _keras_of(model):
    mod = type(model).__module__.split(".")[0]
    if mod == "tf_keras" or "tf_keras" in "".join(c.__module__ for c in type(model).__mro__):
        import tf_keras

        return tf_keras
    import keras

    return keras


@contextlib.contextmanager
def _floatx(dtype: str):
    """Set floatx of tf_keras and Keras 3 (whichever is installed) for the build."""
    saved, policies = [], []
    for name in ("tf_keras", "keras"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        config = getattr(mod, "config", None)
        if config is not None and hasattr(config, "set_dtype_policy"):
            # Keras 3 layers take the global dtype policy (derived from floatx), read before floatx moves
            policies.append((config, config.dtype_policy()))
            config.set_dtype_policy(dtype)
        backend = getattr(mod, "backend", None)
        if backend is not None and hasattr(backend, "floatx"):
            saved.append((backend, backend.floatx()))
            backend.set_floatx(dtype)
    try:
        yield
    finally:
        for backend, value in saved:
            backend.set_floatx(value)
        for config, policy in policies:
            config.set_dtype_policy(policy)


def _own(weight) -> str:
    name = getattr(weight, "path", None) or weight.name
    return name[:-2] if name.endswith(":0") else name


def _retype_config(cfg, dtype: str):
    if isinstance(cfg, dict):
        return {k: _retype_config(v, dtype) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_retype_config(v, dtype) for v in cfg]
    return dtype if cfg in ("float32", "float64") else cfg


class KerasProgram:
    """A user's Keras program, captured (see the module docstring). Use :func:`capture`."""

    framework = "tf2"

    def __init__(self, program: Mapping[str, Any], dtype: str, where: str):
        tf = tensorflow()
        self.tf, self.dtype, self.where, self._notes = tf, dtype, where, []
        unknown = sorted(set(program) - set(PROGRAM_KEYS))
        if unknown:
            raise ParityError(f"{where}: unknown key {unknown[0]!r}; expected some of {', '.join(PROGRAM_KEYS)}")
        model = program.get("model")
        if not (hasattr(model, "layers") and hasattr(model, "trainable_weights") and callable(model)):
            raise ParityError(f"{where}: 'model' must be a keras.Model, got {type(model).__name__}")
        self.keras = _keras_of(model)
        self.data = program.get("data")
        self.input_keys = list(program.get("inputs") or ["x"])
        self.target_keys = list(program.get("targets") or ["y"])
        self.train_step = program.get("train_step")
        self.fit = bool(program.get("fit"))
        if self.train_step is not None and not callable(self.train_step):
            raise ParityError(f"{where}: 'train_step' must be a function of the batch, got {type(self.train_step).__name__}")
        optimizer = program.get("optimizer") or getattr(model, "optimizer", None)
        if optimizer is None or not callable(getattr(optimizer, "apply_gradients", None)):
            raise ParityError(f"{where}: 'optimizer' must be a Keras optimizer, got {type(optimizer).__name__}")
        loss = program.get("loss") or getattr(model, "loss", None)
        if loss is None and self.train_step is None:
            raise ParityError(f"{where}: 'loss' is missing (a Keras loss or a function(y_true, y_pred))")
        if isinstance(loss, str):
            loss = self.keras.losses.get(loss)
        if not model.built:
            raise ParityError(f"{where}: the model is not built: give it an Input shape (or call it once)")
        weights = model.weights
        wdt = str(getattr(weights[0].dtype, "name", weights[0].dtype)) if weights else dtype
        if wdt != dtype:
            if self.train_step is not None:
                from parity.portkit.program import DtypeError

                raise DtypeError(f"{where}: the model was built in {wdt} at import time and train_step uses it: "
                                 f"fix: build the model inside parity_program() (parity sets floatx to {dtype} first)")
            model, optimizer = self._rebuild(model, optimizer, dtype)
            self._notes.append(f"{dtype}: the model was built in {wdt} at import time: rebuilt from its config in "
                               f"{dtype} (weights copied) with a fresh optimizer of the same config")
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.layers = [l for l in model._flatten_layers(include_self=False) if not list(l._flatten_layers(include_self=False))
                       and type(l).__name__ != "InputLayer"]
        self._dropouts = [l for l in self.layers if type(l).__name__ == "Dropout"]
        self._record: dict | None = None
        self._masks: dict = {}
        self._bn: list[str] = []
        self._bn_noted = False
        self._wrap_layers()
        self._wrap_optimizer()
        self._float64_hyper()
        self._build_slots()
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

    # -- rebuilding in another dtype --------------------------------------------------------------
    def _rebuild(self, model, optimizer, dtype):
        K = self.keras
        cfg = _retype_config(model.get_config(), dtype)
        with _floatx(dtype):
            clone = type(model).from_config(cfg) if not isinstance(model, K.Sequential) else K.Sequential.from_config(cfg)
            for a, b in zip(clone.weights, model.weights):
                a.assign(np.asarray(b.numpy(), dtype=dtype))
            # the float32 optimizer's config reads its rate back from a float32 variable
            # (0.0010000000474974513): take each float as the decimal it prints as
            ocfg = {k: _shortest(float(v)) if isinstance(v, (float, np.floating)) else v
                    for k, v in optimizer.get_config().items()}
            opt = type(optimizer).from_config(ocfg)
        return clone, opt

    # -- interception -----------------------------------------------------------------------------
    def _wrap_layers(self) -> None:
        tf = self.tf
        for layer in self.layers:
            original = layer.call
            if layer in self._dropouts:
                index = self._dropouts.index(layer)

                def call(inputs, training=None, _l=layer, _i=index, **kw):
                    mask = self._masks.get(_i)
                    self._shapes[_i] = tuple(int(d) for d in inputs.shape)
                    if not training or mask is None:
                        out = tf.identity(inputs)
                    else:
                        m = tf.constant(np.asarray(mask), dtype=inputs.dtype)
                        out = inputs * m / tf.cast(1.0 - _l.rate, inputs.dtype)
                    self._keep(_l, out)
                    return out
            else:
                def call(*args, _l=layer, **kw):
                    out = type(_l).call(_l, *args, **kw)  # looked up per call: class-level patches apply
                    self._keep(_l, out)
                    return out
            layer.call = call
            activation = getattr(layer, "activation", None)
            if callable(activation) and getattr(activation, "__name__", "linear") != "linear":
                # a Dense/Conv with its own activation: its pre-activation output too (a torch port's Linear)
                def pre(x, _l=layer, _a=activation):
                    if self._record is not None and hasattr(x, "numpy"):
                        self._record["forward"].setdefault(f"{_l.name}/pre_activation", x.numpy())
                    return _a(x)

                layer.activation = pre
        self._shapes: dict[int, tuple] = {}
        original_model_call = self.model.call

        def model_call(*args, **kw):
            out = original_model_call(*args, **kw)
            if self._record is not None:
                self._record["__output__"] = out
            return out

        self.model.call = model_call

    def _keep(self, layer, out) -> None:
        if self._record is not None and layer.name not in self._record["forward"] and hasattr(out, "numpy"):
            self._record["forward"][layer.name] = out.numpy()

    def _wrap_optimizer(self) -> None:
        opt, tf = self.optimizer, self.tf
        original = opt.apply_gradients

        def apply_gradients(grads_and_vars, *args, **kw):
            pairs = list(grads_and_vars)
            if self._record is not None:
                names = {id(v): self._own(v) for v in self.model.trainable_weights}
                grads = {names.get(id(v), self._own(v)): g for g, v in pairs if g is not None}
                self._record.setdefault("gradients", {k: np.asarray(g) for k, g in grads.items()})
                clipped = [g for g, _ in pairs]
                if any(getattr(opt, a, None) for a in ("clipnorm", "clipvalue", "global_clipnorm")) and hasattr(
                        opt, "_clip_gradients"):
                    clipped = opt._clip_gradients(clipped)
                self._record["processed_gradients"] = {
                    names.get(id(v), self._own(v)): np.asarray(g) for g, (_, v) in zip(clipped, pairs) if g is not None}
                self._record["learning_rate"] = {"lr": np.asarray(self._lr())}
            return original(pairs, *args, **kw)

        opt.apply_gradients = apply_gradients

    def _float64_hyper(self) -> None:
        """float64: hand the optimizer its Python-float hyper-parameters as float64 numbers.

        tf_keras' optimizers step with ``tf.cast(self.momentum, var.dtype)``: a Python float
        becomes a float32 tensor first, so a float64 run would use momentum 0.8999999762
        (measured: 1.25e-8 relative in the first SGD update against torch). The program's
        float32 run is unchanged.
        """
        if self.dtype != "float64" or self.keras.__name__ != "tf_keras":
            return
        fixed = []
        for attr in ("momentum", "beta_1", "beta_2", "epsilon", "rho", "initial_accumulator_value"):
            v = getattr(self.optimizer, attr, None)
            if isinstance(v, float) and float(np.float32(v)) != v:
                setattr(self.optimizer, attr, np.float64(v))
                fixed.append(f"{attr}={v!r}")
        for layer in self.layers:  # BatchNormalization: decay = convert_to_tensor(1 - momentum), float32
            v = getattr(layer, "momentum", None)
            if type(layer).__name__ == "BatchNormalization" and isinstance(v, float):
                layer.momentum = np.float64(v)
                fixed.append(f"{layer.name}.momentum={v!r}")
        if fixed:
            self._notes.append("float64: tf_keras casts Python-float hyper-parameters through float32 "
                               f"(tf.cast(0.9, float64) = 0.8999999762): {', '.join(fixed)} given as float64")

    def _lr(self):
        opt = self.optimizer
        lr = opt.learning_rate
        if callable(lr) and not hasattr(lr, "numpy"):
            lr = lr(opt.iterations)
        return np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr, dtype=self.dtype)

    def _build_slots(self) -> None:
        opt = self.optimizer
        if hasattr(opt, "get_slot_names"):  # tf_keras legacy OptimizerV2
            opt._create_all_weights(self.model.trainable_weights)
        elif hasattr(opt, "_get_variable_index"):  # Keras 3
            if not opt.built:
                opt.build(self.model.trainable_weights)
        elif not getattr(opt, "_built", False):  # tf_keras optimizer
            opt.build(self.model.trainable_weights)
        family = type(opt).__name__.lower()
        lists = _SLOT_LISTS.get(family, _SLOT_LISTS[""])
        self._slot_vars: dict[str, tuple] = {}
        for w in self.model.trainable_weights:
            if hasattr(opt, "get_slot_names"):  # legacy OptimizerV2
                for slot in opt.get_slot_names():
                    canonical = {"rms": "ms", "momentum": "momentum"}.get(slot, slot)
                    self._slot_vars[f"{self._own(w)}/{canonical}"] = (opt.get_slot(w, slot), slot == "momentum")
                continue
            if hasattr(opt, "_get_variable_index"):
                i = opt._get_variable_index(w)
            else:
                i = opt._index_dict[opt._var_key(w)]
            for attr, canonical in lists.items():
                values = getattr(opt, attr, None)
                if values and i < len(values) and values[i] is not None:
                    self._slot_vars[f"{self._own(w)}/{canonical}"] = (values[i], family == "sgd")
        if family == "sgd" and self._slot_vars:
            self._notes.append("Keras SGD keeps the velocity v = mu*v - lr*g; slots report -v/lr (TF1's and torch's "
                               "momentum accumulator)")

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
            leaf = self._own(w).split("/")[-1]
            kind = _KINDS.get((type(layer).__name__ if layer else "", leaf), "bias" if leaf == "bias" else "other")
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
        self._masks = dict(masks or {})
        self._record = {"forward": {}}
        try:
            with fused_batch_norm_convention(self.dtype, self._bn):
                self.model(x, training=True)
            return dict(self._record["forward"])
        finally:
            self._record = None
            for w, v in saved:
                w.assign(v)

    def step(self, batch, masks=None) -> dict:
        with _floatx(self.dtype):  # Keras casts float inputs to floatx (train_on_batch)
            return self._step(batch, masks)

    def _step(self, batch, masks=None) -> dict:
        tf = self.tf
        x, y, tensors = self._split(batch)
        self._masks = dict(masks or {})
        self._record = {"forward": {}}
        tape_grads: list = []
        bn = fused_batch_norm_convention(self.dtype, self._bn)
        bn.__enter__()
        try:
            if self.fit:
                self.model.train_on_batch(x, y)
                loss = self.loss(y, self._record["__output__"])
            elif self.train_step is not None:
                original = tf.GradientTape.gradient

                def gradient(tape, target, sources, *a, **kw):
                    out = original(tape, target, sources, *a, **kw)
                    tape_grads.append((sources, out))
                    return out

                tf.GradientTape.gradient = gradient
                try:
                    loss = self.train_step(tensors)
                finally:
                    tf.GradientTape.gradient = original
            else:
                with tf.GradientTape() as tape:
                    out = self.model(x, training=True)
                    loss = self.loss(y, out)
                grads = tape.gradient(loss, self.model.trainable_weights)
                self.optimizer.apply_gradients(zip(grads, self.model.trainable_weights))
            rec = self._record
        finally:
            self._record = None
            bn.__exit__(None, None, None)
        if self._bn and not self._bn_noted:
            self._bn_noted = True
            self._notes.append(f"{self.dtype}: BatchNormalization {', '.join(self._bn)} has no float64 fused kernel and "
                               "runs non-fused, whose moving variance update uses the biased batch variance; parity "
                               "scales it by n/(n-1), the fused kernel's (float32) convention")
        if tape_grads:
            names = {id(v): self._own(v) for v in self.model.trainable_weights}
            sources, grads = tape_grads[-1]
            flat_s, flat_g = tf.nest.flatten(sources), tf.nest.flatten(grads)
            rec["gradients"] = {names[id(s)]: np.asarray(g) for s, g in zip(flat_s, flat_g)
                                if id(s) in names and g is not None}
        out = {"forward": rec["forward"], "loss": {"loss": np.asarray(loss)}}
        for stage in ("gradients", "processed_gradients", "learning_rate"):
            if stage in rec:
                out[stage] = rec[stage]
        out["parameters"] = {self._own(w): w.numpy() for w in self.model.trainable_weights}
        slots = {}
        lr = float(self._lr())
        for key, (var, velocity) in self._slot_vars.items():
            value = np.asarray(var.numpy())
            slots[key] = -value / lr if velocity else value
        if slots:
            out["slots"] = slots
        if self.model.non_trainable_weights:
            out["state"] = {self._own(w): w.numpy() for w in self.model.non_trainable_weights}
        return out

    def dropout_sites(self) -> list:
        from parity.portkit.program import DropoutSite

        out = []
        for i, layer in enumerate(self._dropouts):
            if i not in self._shapes:
                raise ParityError(f"{self.where}: dropout {layer.name} not called yet: call forward() first")
            out.append(DropoutSite(i, layer.name, self._shapes[i], float(layer.rate)))
        return out

    def input_specs(self) -> dict:
        inputs = getattr(self.model, "inputs", None) or []
        out = {}
        for key, t in zip(self.input_keys, inputs):
            out[key] = (tuple(None if d is None else int(d) for d in t.shape), self.dtype)
        return out

    def data_source(self):
        return self.data

    def settings(self) -> dict:
        opt = self.optimizer
        out = {"optimizer": f"{self.keras.__name__}:{type(opt).__name__}", "lr": float(self._lr())}
        for attr, key in (("beta_1", "beta1"), ("beta_2", "beta2"), ("epsilon", "eps"), ("momentum", "momentum"),
                          ("nesterov", "nesterov"), ("rho", "rho"), ("weight_decay", "weight_decay")):
            v = getattr(opt, attr, None)
            if v is None:
                continue
            v = v.numpy() if hasattr(v, "numpy") else v
            out[key] = bool(v) if isinstance(v, bool) else float(v)
        return out

    def notes(self) -> list[str]:
        return list(self._notes)

    def close(self) -> None:
        self._record = None


def capture(build: Callable[[], Mapping[str, Any]], *, dtype: str, where: str = "tf2 program") -> KerasProgram:
    """Build a user's Keras program (floatx set to ``dtype``) and capture it."""
    if dtype not in ("float64", "float32"):
        raise ParityError(f"dtype must be float64 or float32, not {dtype!r}")
    fn = getattr(build, "parity_program", build)
    if not callable(fn):
        raise ParityError(f"{where}: tf2 capture needs the parity_program function")
    tensorflow()
    with _floatx(dtype):
        program = fn()
    if not isinstance(program, Mapping):
        raise ParityError(f"{where}: parity_program() must return a dict, not {type(program).__name__}")
    with _floatx(dtype):
        return KerasProgram(program, dtype, where)
