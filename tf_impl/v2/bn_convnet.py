"""Seed 003 in TF2: the BatchNorm + dropout convnet with ``tf.keras`` (Keras 3) and GradientTape.

The port: a custom step, ``model(inputs, training=True)`` under a ``GradientTape``, then
``optimizer.apply_gradients``: the TF2 form of the seed's fixed step. An equivalent form
is :class:`Fit` (:data:`ALTERNATIVES` ``fit``): ``model.compile`` + ``model.train_on_batch``
(one ``fit`` step per batch, no shuffling). The seed's bug in TF2, the same step calling
``model(inputs)`` (Keras then runs in inference mode: BatchNorm on its moving statistics,
dropout the identity), lives in ``tf_impl/v2/mistakes/bn_convnet.py``.

What ``fit`` exposes per step is its parameters, slots and state; its forward, loss and
gradients are computed by a separate ``training=True`` tape forward *before* the update
on the same weights. That forward would update the BatchNorm moving statistics a second
time, so the port snapshots them and assigns them back before ``train_on_batch``: the
recorded state is what ``fit`` alone produced.

Conventions (``settings()``): Keras BatchNorm momentum 0.99, epsilon 1e-3, biased moving
variance (Keras 3 BatchNorm is never fused); Keras SGD keeps the velocity
``m = mu*m - lr*g`` and steps ``var += mu*m - lr*g`` (Nesterov): the slots are reported
as that velocity (the canonical convention).

float64, two traps, both measured against torch (1.25e-8 relative in the parameters
after step 0 otherwise):

* the optimizer's learning-rate variable has dtype ``keras.config.floatx()``: the port
  sets floatx to the case's dtype while it builds, and restores it after (the layers get
  their dtype explicitly: Keras 3 keeps the global dtype policy it first derived from
  floatx, so a float32 port built after a float64 one would otherwise run in float64);
* Keras 3 SGD casts its Python-float momentum with ``tf.cast(0.9, float64)``, which
  converts 0.9 to a float32 tensor first: the step uses 0.8999999762. The port passes
  ``np.float64(0.9)`` (a ``float`` subclass, so SGD's argument check accepts it), which
  converts exactly.
"""

from __future__ import annotations

import contextlib

import numpy as np

from parity.portkit.variants import build_variant
from tf_impl import framework_info as _framework_info, tensorflow

__all__ = ["build", "framework_info", "BnConvnetPort", "ALTERNATIVES"]
LAYERS = ("conv", "bn", "relu", "pool", "flatten", "dropout", "dense")


def framework_info() -> dict:
    info = _framework_info()
    info["keras"] = tensorflow().keras.__version__
    return info


def _masked_dropout(keras):
    class MaskedDropout(keras.layers.Layer):
        """Inverted dropout with a given keep mask; the identity unless ``training``, like ``Dropout``."""

        def __init__(self, keep, **kwargs):
            super().__init__(**kwargs)
            self.keep = keep

        def call(self, inputs, training=None):
            x, mask = inputs
            return x * mask / self.keep if training else x

    return MaskedDropout


@contextlib.contextmanager
def _floatx(keras, dtype):
    """Build under ``keras.config.floatx() == dtype`` (the optimizer's variables take floatx)."""
    previous = keras.config.floatx()
    keras.config.set_floatx(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous)


class BnConvnetPort:
    def __init__(self, case, dtype):
        tf = tensorflow()
        keras = tf.keras
        self.tf, self.keras, self.case, self.dtype = tf, keras, case, dtype
        o = case.option
        self.keep, self.lr, self.mu = o("keep", 0.75), o("lr", 0.1), o("momentum", 0.9)
        self.bn_momentum, self.eps = o("bn_momentum", 0.99), o("bn_epsilon", 1e-3)
        shape = tuple(case.data.args.get("shape", (32, 32, 3)))
        side = shape[0] // 2
        features = side * side * o("filters", 8)
        with _floatx(keras, dtype):
            keras.utils.set_random_seed(case.seed)
            x_in = keras.Input(shape, name="x", dtype=dtype)
            mask_in = keras.Input((features,), name="keep_mask", dtype=dtype)
            self.conv = keras.layers.Conv2D(o("filters", 8), 3, padding="same", use_bias=False, name="conv",
                                            dtype=dtype)
            self.bn = keras.layers.BatchNormalization(momentum=self.bn_momentum, epsilon=self.eps, name="bn",
                                                         dtype=dtype)
            self.dense = keras.layers.Dense(o("classes", 10), activation="softmax", name="dense", dtype=dtype)
            acts = {}
            acts["conv"] = h = self.conv(x_in)
            acts["bn"] = h = self.bn(h)
            acts["relu"] = h = keras.layers.ReLU(name="relu", dtype=dtype)(h)
            acts["pool"] = h = keras.layers.MaxPooling2D(2, name="pool", dtype=dtype)(h)
            acts["flatten"] = h = keras.layers.Flatten(name="flatten", dtype=dtype)(h)
            acts["dropout"] = h = _masked_dropout(keras)(self.keep, name="dropout", dtype=dtype)([h, mask_in])
            acts["dense"] = out = self.dense(h)
            self.model = keras.Model([x_in, mask_in], out)
            # The same layers, every activation as an output: one forward gives them all.
            self.probe = keras.Model([x_in, mask_in], [acts[k] for k in LAYERS])
            self.loss_fn = keras.losses.CategoricalCrossentropy()
            # np.float64: see the module docstring (Keras 3 casts a Python float through float32).
            momentum = np.float64(self.mu)
            self.opt = keras.optimizers.SGD(learning_rate=self.lr, momentum=momentum, nesterov=o("nesterov", True))
            self.opt.build(self.model.trainable_variables)
        self.names = {
            "conv/kernel": self.conv.kernel,
            "bn/gamma": self.bn.gamma,
            "bn/beta": self.bn.beta,
            "dense/kernel": self.dense.kernel,
            "dense/bias": self.dense.bias,
        }
        self.state = {"bn/moving_mean": self.bn.moving_mean, "bn/moving_variance": self.bn.moving_variance}
        self.trainable = list(self.names.values())
        # The custom step traced once (the batch shape never changes): Keras layers called
        # eagerly cost ~85 ms a step, traced ~40 ms (measured, 50 steps).
        self._step_fn = tf.function(self._train)

    def settings(self):
        return {
            "bn_momentum": float(self.bn_momentum),
            "bn_momentum_convention": "tf",
            "bn_epsilon": float(self.eps),
            "bn_running_var": "biased",
            "dropout_mask": "harness mask, x*mask/keep when training, identity otherwise",
            "bn_moving_variance": "biased (Keras 3 BatchNormalization)",
            "dropout_detail": f"harness mask, x*mask/{self.keep} when training, identity otherwise",
            "mode": "model(x, training=True)",
            "sgd": {"lr": self.lr, "momentum": self.mu, "nesterov": True},
            "slots": "Keras velocity convention: m = mu*m - lr*g",
        }

    def parameters(self):
        out = {n: v.numpy() for n, v in self.names.items()}
        out.update({n: v.numpy() for n, v in self.state.items()})
        return out

    def load(self, params):
        for n, v in list(self.names.items()) + list(self.state.items()):
            v.assign(np.asarray(params[n], dtype=self.dtype))

    def _forward(self, inputs, y, training):
        tf = self.tf
        with tf.GradientTape() as tape:
            acts = self.probe(inputs, training=training)
            loss = self.loss_fn(y, acts[-1])
        grads = tape.gradient(loss, self.trainable)
        return dict(zip(LAYERS, acts)), loss, grads

    def _train(self, inputs, y):
        """Run one training step; return the activations, the loss and the gradients it used."""
        acts, loss, grads = self._forward(inputs, y, True)
        self.opt.apply_gradients(zip(grads, self.trainable))
        return acts, loss, grads

    def _run(self, inputs, y):
        return self._step_fn(inputs, y)

    def step(self, batch):
        tf = self.tf
        inputs = [tf.constant(batch["x"]), tf.constant(batch["keep_mask"])]
        acts, loss, grads = self._run(inputs, tf.constant(batch["y"]))
        out = {
            "forward": {k: v.numpy() for k, v in acts.items()},
            "loss": {"loss": loss.numpy()},
            "gradients": {n: g.numpy() for n, g in zip(self.names, grads)},
            "learning_rate": {"lr": np.asarray(self.opt.learning_rate.numpy())},
            "parameters": {n: v.numpy() for n, v in self.names.items()},
            "slots": {f"{n}/momentum": self.opt.momentums[self.opt._get_variable_index(v)].numpy()
                      for n, v in self.names.items()},
            "state": {n: v.numpy() for n, v in self.state.items()},
        }
        return out


class Fit(BnConvnetPort):
    """``model.compile`` + ``model.train_on_batch``: one ``fit`` step per batch."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        with _floatx(self.keras, dtype):
            self.model.compile(optimizer=self.opt, loss=self.loss_fn)
        self._diagnostic = self.tf.function(self._forward)

    def _run(self, inputs, y):
        return self._train(inputs, y)  # not traced: train_on_batch runs its own compiled step

    def _train(self, inputs, y):
        saved = {n: v.numpy() for n, v in self.state.items()}
        acts, loss, grads = self._diagnostic(inputs, y, True)  # what fit computes, for the trace
        for n, v in self.state.items():
            v.assign(saved[n])  # undo the diagnostic forward's moving-average update
        self.model.train_on_batch(inputs, y)
        return acts, loss, grads

    def settings(self):
        return {**super().settings(), "mode": "fit (train_on_batch)"}


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"fit": Fit}


def build(case, dtype, variant=None):
    """Build the TF2 (Keras 3) seed-003 port."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return BnConvnetPort(case, dtype)
