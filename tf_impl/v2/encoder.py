"""Seed 000 in TF2: the identity encoder with ``tf.keras`` Dense layers and a GradientTape.

What a TF2 user writes today: Keras ``Dense`` layers (ReLU on the hidden ones), the loss
on element [0, 0] only (``(I[0,0] - 2*O2[0,0])^2``), gradients from a ``GradientTape``,
``tf.clip_by_value`` on each, then ``optimizer.apply_gradients``. In TF 2.21 ``tf.keras``
is Keras 3, whose ``SGD`` without momentum is plain gradient descent
(``var -= lr * g``), the TF1 ``GradientDescentOptimizer`` update.

float64: the optimizer's learning-rate variable takes ``keras.config.floatx()``; the port
sets floatx to the case's dtype while it builds (a float32 1e-3 differs from 1e-3 by
4.7e-11 relative, which the float64 comparison would flag). The layers get their dtype
explicitly: Keras 3 keeps the global dtype policy it first derived from floatx, so a
float32 port built after a float64 one would otherwise compute in float64.

An equivalent formulation, :class:`Minimize` (no clipping, TF1's ``opt.minimize``), is in
:data:`ALTERNATIVES`.
"""

from __future__ import annotations

import numpy as np

from parity.cases.catalog.seed000 import layer_names
from parity.trace.health import summary_dir

from parity.portkit.variants import build_variant
from tf_impl import framework_info, tensorflow

__all__ = ["build", "framework_info", "EncoderPort", "ALTERNATIVES"]


class EncoderPort:
    def __init__(self, case, dtype):
        tf = tensorflow()
        keras = tf.keras
        self.tf, self.case, self.dtype = tf, case, dtype
        hidden = tuple(case.option("hidden", (16,)))
        self.names = layer_names(len(hidden))
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)
        try:
            self.layers = []
            width = 1
            for (_, _, oname), units in zip(self.names, hidden + (1,)):
                layer = keras.layers.Dense(units, activation=None if oname == "O2" else "relu", name=oname,
                                           dtype=dtype)
                layer.build((None, width))
                self.layers.append(layer)
                width = units
            self.opt = keras.optimizers.SGD(learning_rate=case.option("lr", 1e-3))
            self.variables = [v for layer in self.layers for v in (layer.kernel, layer.bias)]
            self.opt.build(self.variables)
        finally:
            keras.config.set_floatx(previous)
        self.clip = case.option("clip_value", 4.5)
        self.summary_dir = summary_dir(case, "tf2", dtype)
        self.writer, self.count = None, 0
        self._train = tf.function(self._train_step)

    def _pairs(self):
        for (wn, bn, _), layer in zip(self.names, self.layers):
            yield wn, layer.kernel
            yield bn, layer.bias

    def parameters(self):
        return {n: v.numpy() for n, v in self._pairs()}

    def load(self, params):
        for n, v in self._pairs():
            v.assign(np.asarray(params[n], dtype=self.dtype))

    def _train_step(self, x):
        # Traced once by tf.function (the batch shape never changes): eager, the Python
        # dispatch of a handful of 16-wide ops cost ~26 ms a step; traced, ~3 ms (measured).
        tf = self.tf
        names = [n for n, _ in self._pairs()]
        acts = {}
        with tf.GradientTape() as tape:
            h = x
            for (_, _, oname), layer in zip(self.names, self.layers):
                h = acts[oname] = layer(h)
            loss = tf.square(x[0, 0] - 2.0 * acts["O2"][0, 0])
        grads = tape.gradient(loss, self.variables)
        out = {
            "forward": acts,
            "loss": {"loss": loss},
            "gradients": dict(zip(names, grads)),
            "learning_rate": {"lr": tf.identity(self.opt.learning_rate)},
        }
        if self.clip is not None:
            grads = [tf.clip_by_value(g, -self.clip, self.clip) for g in grads]
            out["processed_gradients"] = dict(zip(names, grads))
        self.opt.apply_gradients(zip(grads, self.variables))
        return out

    def step(self, batch):
        out = self._train(self.tf.constant(batch["I"]))
        out = {stage: {k: v.numpy() for k, v in arrays.items()} for stage, arrays in out.items()}
        out["parameters"] = self.parameters()
        if self.summary_dir:
            self._write_histograms(out["gradients"], out["parameters"])
        return out

    def _write_histograms(self, grads, params):
        # The seed answer's TensorBoard histograms of every variable and its gradient, the
        # same names as the TF1 and torch ports write, with TF2's tf.summary.
        tf = self.tf
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.summary_dir)
        with self.writer.as_default(step=self.count):
            for name in params:
                tf.summary.histogram(name, params[name])
                tf.summary.histogram(name + "_grad", grads[name])
        self.count += 1

    def close(self):
        if self.writer is not None:
            self.writer.close()


class Minimize(EncoderPort):
    """Gradient descent on the raw gradients: TF1's ``opt.minimize`` (equal where the clip does not bite)."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.clip = None


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize}


def build(case, dtype, variant=None):
    """Build the TF2 encoder port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return EncoderPort(case, dtype)
