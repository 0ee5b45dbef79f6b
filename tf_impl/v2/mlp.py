"""Seed 002 in TF2 as one writes it today: Keras 3 ``Dense`` layers, a ``tf.GradientTape``
training step compiled with ``tf.function``, a Keras ``PolynomialDecay`` schedule read at
a step counter, and the max-norm as a Keras ``Constraint`` applied after each update.

* The momentum update is written out in the TF1 form (``accum = mu*accum + g; var -=
  lr*accum``) with tf ops, not ``keras.optimizers.SGD(momentum=0.9)``: Keras folds the
  learning rate into the velocity (``m = mu*m - lr*g; var += m``), which trains differently
  as soon as the rate changes between steps (PITFALLS P07), and the seed's schedule changes
  it every step. ``tf_impl/v2/mistakes/mlp.py`` uses ``keras.optimizers.SGD`` to show the
  difference.
* The max-norm is ``tf.clip_by_norm(kernel, r, axes=[1])`` as the seed wrote it: each
  *row* of the ``[in, out]`` kernel (an input unit's outgoing weights). Keras'
  ``MaxNorm`` constrains columns (``axis=0``) and divides by ``norm + 1e-7``: not the seed.
* Keras 3 losses and schedules compute in ``floatx`` (float32) unless told otherwise: the
  loss is given the run's dtype, and ``PolynomialDecay`` gets its rates and power as
  tensors of the run's dtype: its ``ops.cast(0.9, float64)`` goes through a float32
  tensor, so Python floats give ``power = float32(0.9)`` and ``end = float32(0.001)``
  (measured: the float64 lr 6e-10 relative off from step 1).

:data:`ALTERNATIVES` ``resume``: after ``resume_at`` steps (default half the run) the port writes a
``tf.train.Checkpoint`` (layers, momentum slots, step counter), and a fresh port restored
from it runs the rest (:func:`save` / :func:`restore`).
"""

from __future__ import annotations

import os

from parity.portkit.resume import ResumedPort
from parity.portkit.variants import build_variant
from tf_impl import tensorflow
from tf_impl.v2 import framework_info

__all__ = ["build", "framework_info", "save", "restore", "MlpPort", "ALTERNATIVES"]

LAYERS = ("hidden1", "hidden2", "output")


def _keras():
    tensorflow()
    import keras

    return keras


class MlpPort:
    def __init__(self, case, dtype):
        tf, keras = tensorflow(), _keras()
        self.tf, self.case, self.dtype = tf, case, dtype
        o = case.option
        self.procedure = o("procedure", "clip_value")
        if self.procedure not in ("clip_value", "global_norm", "max_norm"):
            raise ValueError(f"unknown procedure {self.procedure!r}")
        dt = tf.as_dtype(dtype)
        self.layers = {
            name: keras.layers.Dense(units, activation="relu" if name != "output" else None, name=name, dtype=dtype)
            for name, units in zip(LAYERS, (300, 100, 10))
        }
        width = 784
        for name in LAYERS:
            self.layers[name].build((None, width))
            width = self.layers[name].units
        self.loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, dtype=dtype)
        self.step_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.variables = {f"{n}/{w}": getattr(self.layers[n], w) for n in LAYERS for w in ("kernel", "bias")}
        self.constraints = {}
        if self.procedure == "max_norm":
            self.schedule = keras.optimizers.schedules.PolynomialDecay(
                tf.constant(o("lr", 0.01), dt), o("decay_steps"), tf.constant(o("end_lr", 0.001), dt),
                power=tf.constant(o("power", 1.0), dt))
            self.mu = tf.constant(o("momentum", 0.9), dt)
            radius = tf.constant(o("max_norm", 1.0), dt)
            axes = o("max_norm_axes", 1)
            for layer in o("max_norm_layers", ("hidden1", "hidden2")):
                self.constraints[f"{layer}/kernel"] = _ClipByNorm(radius, axes)
        else:
            self.schedule = None
        # TF1's momentum accumulators: the update is written out in _update (not Keras' SGD).
        self.accum = {
            n: tf.Variable(tf.zeros_like(v), trainable=False, name=f"{n}/Momentum")
            for n, v in self.variables.items()
        } if self.procedure == "max_norm" else {}
        self._train = tf.function(self._train_step)
        self._constrain = tf.function(self._apply_constraints)

    def parameters(self):
        return {n: v.numpy() for n, v in self.variables.items()}

    def load(self, params):
        for n, v in self.variables.items():
            v.assign(params[n])

    def settings(self):
        o = self.case.option
        return {"procedure": self.procedure, "lr": o("lr", 0.01), "momentum_form": "tf1 (a = mu*a + g)"}

    def _lr(self):
        if self.schedule is None:
            return self.tf.constant(self.case.option("lr", 0.01), self.tf.as_dtype(self.dtype))
        return self.schedule(self.step_count)

    def _train_step(self, x, y):
        tf, o = self.tf, self.case.option
        with tf.GradientTape() as tape:
            h1 = self.layers["hidden1"](x)
            h2 = self.layers["hidden2"](h1)
            logits = self.layers["output"](h2)
            loss = self.loss_fn(y, logits)
        names = list(self.variables)
        grads = dict(zip(names, tape.gradient(loss, [self.variables[n] for n in names])))
        out = {"forward": {"hidden1": h1, "hidden2": h2, "logits": logits}, "loss": {"loss": loss},
               "gradients": dict(grads)}
        if self.procedure == "clip_value":
            c = o("clip_value", 1.0)
            grads = {n: tf.clip_by_value(g, -c, c) for n, g in grads.items()}
            out["processed_gradients"] = dict(grads)
        elif self.procedure == "global_norm":
            clipped, norm = tf.clip_by_global_norm([grads[n] for n in names],
                                                   tf.constant(o("clip_norm"), tf.as_dtype(self.dtype)))
            grads = dict(zip(names, clipped))
            out["processed_gradients"] = {**grads, "global_norm": norm}
        lr = self._lr()
        out["learning_rate"] = {"lr": lr}
        slots = self._update(grads, lr)
        self.step_count.assign_add(1)
        out["parameters"] = {n: tf.identity(v.value) for n, v in self.variables.items()}
        if self.procedure == "max_norm":
            out["slots"] = {f"{n}/momentum": s for n, s in slots.items()}
            out["state"] = {"global_step": self.step_count.read_value()}
        return out

    def _update(self, grads, lr):
        """Apply TF1's update (``accum = mu*accum + g; var -= lr*accum``, or plain GD); return the slots."""
        for n, g in grads.items():
            if self.accum:
                self.accum[n].assign(self.mu * self.accum[n] + g)
                self.variables[n].assign_sub(lr * self.accum[n])
            else:
                self.variables[n].assign_sub(lr * g)
        return {n: a.read_value() for n, a in self.accum.items()}

    def _apply_constraints(self):
        # As Keras' optimizer does after each update: variable.assign(constraint(variable)).
        for n, constraint in self.constraints.items():
            self.variables[n].assign(constraint(self.variables[n]))
        return {n: self.tf.identity(self.variables[n].value) for n in self.constraints}

    def step(self, batch):
        tf = self.tf
        out = self._train(tf.constant(batch["X"]), tf.constant(batch["y"]))
        out = {s: {k: v.numpy() for k, v in arrays.items()} for s, arrays in out.items()}
        if self.constraints:
            out["constrained"] = {k: v.numpy() for k, v in self._constrain().items()}
        return out

    # -- checkpoints ---------------------------------------------------------------
    def checkpoint(self):
        tf = self.tf
        objects = {"layers": list(self.layers.values()), "step": self.step_count}
        if self.accum:
            objects["accum"] = [self.accum[n] for n in self.variables]
        return tf.train.Checkpoint(**objects)

    def close(self):
        pass


class _ClipByNorm:
    """``tf.clip_by_norm(w, radius, axes)`` as a Keras constraint (a callable on the variable)."""

    def __init__(self, radius, axes):
        self.radius, self.axes = radius, axes

    def __call__(self, w):
        return tensorflow().clip_by_norm(w, self.radius, axes=[self.axes])


def save(port: MlpPort, directory: str) -> str:
    """Write the port's ``tf.train.Checkpoint`` under ``directory``; return its path."""
    return port.checkpoint().write(os.path.join(directory, "mlp"))


def restore(case, dtype, path: str) -> MlpPort:
    """Return a fresh port of ``case`` restored from a checkpoint written by :func:`save`."""
    port = MlpPort(case, dtype)
    port.checkpoint().read(path).assert_consumed()
    return port


def resumed(case, dtype) -> ResumedPort:
    """The port, saved after ``resume_at`` steps and restored into a fresh one that runs the rest."""
    at = int(case.option("resume_at", case.steps // 2))
    return ResumedPort(case, dtype, lambda: MlpPort(case, dtype), save, restore, at)


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"resume": resumed}


def build(case, dtype, variant=None):
    """Build the TF2 MLP port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MlpPort(case, dtype)
