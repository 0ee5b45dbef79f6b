"""Seed 004 in TF2: what a GradientTape + ``apply_gradients`` step trains.

Cases (``case.options["kind"]``): ``oscillate`` (``(y - w*x)^2``: 2 -> 4 -> 2 -> 4),
``sum`` (``w3`` a ``tf.constant``: never trained), ``constants`` (nothing to train).

TF2 has no ``minimize(var_list=...)`` graph to prune; what is trained is the list handed
to ``tape.gradient`` and ``apply_gradients``:

* the port: every parameter is a ``tf.Variable``; the gradients are taken for the case's
  trainable ones only (TF1's ``var_list``);
* :class:`TrainableFalse` (in :data:`ALTERNATIVES`): frozen parameters are ``tf.Variable(trainable=False)``, which a
  ``GradientTape`` does not watch; the step trains the variables the tape watched
  (``tape.watched_variables()``, the TF2 counterpart of ``TRAINABLE_VARIABLES``).

The optimizer is ``tf.keras.optimizers.SGD`` (Keras 3 in TF 2.21): without momentum it is
plain gradient descent, ``var -= lr * g``. Its learning-rate variable takes
``keras.config.floatx()``, so the port builds it under the case's dtype (lr 0.1 as float32
is 1.5e-9 away from 0.1 in float64).

Nothing to train: the tape returns ``[]`` for an empty variable list, and Keras 3's
``apply_gradients([])`` raises ``ValueError: not enough values to unpack (expected 2,
got 0)`` (measured): TF2 does refuse, only in obscure words and at the first step, not
when the training op is built as TF1's "No variables to optimize". The port lets that
error through unchanged: the case reports each framework's own refusal.

``global_step`` is a ``tf.Variable(0, int64, trainable=False)`` the loop increments after
each update; the EMA is ``tf.train.ExponentialMovingAverage(decay, num_updates=global_step)``
applied after each update, as TF1's (so the decay is computed in float32 there too: see
:func:`parity.oracle.minimize.ema_one_minus_decay`). Its shadows are created in
``load()`` from the loaded values, where TF1 initializes them from the variables' initial
values.
"""

from __future__ import annotations

import numpy as np

from parity.portkit.variants import build_variant
from tf_impl import framework_info, tensorflow

__all__ = ["build", "framework_info", "MinimizePort", "ALTERNATIVES"]


class MinimizePort:
    def __init__(self, case, dtype):
        tf = tensorflow()
        keras = tf.keras
        self.tf, self.case, self.dtype = tf, case, dtype
        self.kind = case.option("kind", "oscillate")
        if self.kind not in ("oscillate", "sum", "constants"):
            raise ValueError(f"unknown kind {self.kind!r}")
        self.variables = {
            name: tf.Variable(tf.zeros(spec.shape, dtype=dtype), name=name,
                              trainable=self._watched(spec))
            for name, spec in case.params.items()
        }
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            self.opt = keras.optimizers.SGD(learning_rate=case.option("lr", 1.0))
        finally:
            keras.config.set_floatx(previous)
        self.global_step = None
        if case.option("global_step", False):
            self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        self.decay = case.option("ema_decay")
        self.ema = None
        if self.decay is not None:
            self.ema = tf.train.ExponentialMovingAverage(self.decay, num_updates=self.global_step)

    def parameters(self):
        return {n: v.numpy() for n, v in self.variables.items()}

    def load(self, params):
        for n, v in self.variables.items():
            v.assign(np.asarray(params[n], dtype=self.dtype))
        if self.ema is not None:
            trained = [self.variables[n] for n in self.case.trainable]
            self.ema.apply(trained)  # creates the shadows from the current (loaded) values
            for var in trained:
                self.ema.average(var).assign(var)  # and makes sure they equal them

    def _prediction(self, x):
        tf, v = self.tf, self.variables
        if self.kind == "oscillate":
            return v["w"] * x
        if self.kind == "sum":
            w3 = tf.constant(self.case.option("w3", 4.0), dtype=x.dtype, name="w3")
            return v["w1"] * x + v["w2"] * x + w3 * x
        w = [tf.constant(c, dtype=x.dtype) for c in self.case.option("constants", (4.0, 4.0, 4.0))]
        return w[0] * x + w[1] * x + w[2] * x

    def step(self, batch):
        tf = self.tf
        x = tf.constant(batch["x"], dtype=self.dtype)
        y = tf.constant(batch["y"], dtype=self.dtype)
        with tf.GradientTape() as tape:
            prediction = self._prediction(x)
            loss = tf.square(y - prediction)
        names, trained = self._trained(tape)
        grads = tape.gradient(loss, trained)
        out = {
            "forward": {"prediction": prediction.numpy()},
            "loss": {"loss": loss.numpy()},
            "gradients": {n: g.numpy() for n, g in zip(names, grads)},
            "learning_rate": {"lr": np.asarray(self.opt.learning_rate.numpy())},
        }
        self.opt.apply_gradients(zip(grads, trained))  # Keras 3 raises on an empty list
        out["parameters"] = self.parameters()
        state = {}
        if self.global_step is not None:
            self.global_step.assign_add(1)
            state["global_step"] = self.global_step.numpy()
        if self.ema is not None:
            self.ema.apply([self.variables[n] for n in self.case.trainable])
            for n in self.case.trainable:
                state[f"{n}/ExponentialMovingAverage"] = self.ema.average(self.variables[n]).numpy()
        if state:
            out["state"] = state
        return out


    def _watched(self, spec) -> bool:
        # Every parameter is an ordinary variable: the list handed to the tape picks what is trained.
        return True

    def _trained(self, tape):
        """Return the names and variables this step trains: the case's trainable ones (TF1's var_list)."""
        names = list(self.case.trainable)
        return names, [self.variables[n] for n in names]


class TrainableFalse(MinimizePort):
    """Frozen parameters are ``tf.Variable(trainable=False)``; the step trains what the tape watched."""

    def _watched(self, spec) -> bool:
        return spec.trainable

    def _trained(self, tape):
        trained = list(tape.watched_variables())
        return [n for n, v in self.variables.items() if any(v is w for w in trained)], trained


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"trainable_false": TrainableFalse}


def build(case, dtype, variant=None):
    """Build the TF2 seed-004 port of ``case``; nothing to train fails at the first step (Keras 3's own error)."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MinimizePort(case, dtype)
