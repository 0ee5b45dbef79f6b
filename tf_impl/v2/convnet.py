"""Seed 001 in TF2: Keras layers called in a ``tf.function`` step with a ``GradientTape``.

``Conv2D(padding="same", activation="relu")``, ``MaxPooling2D(2, padding="same")``,
``Flatten`` (NHWC, (h, w, c): the canonical layout, nothing to permute), ``Dense``; loss
``tf.nn.softmax_cross_entropy_with_logits`` under ``reduce_mean``; ``keras.optimizers.Adam``.

Two Keras defaults differ from the TF1 seed and are set explicitly (:data:`KERAS_ADAM`):

* ``epsilon``: Keras defaults to 1e-7, TF1's ``AdamOptimizer`` to 1e-8 (both add it to
  sqrt of the uncorrected v, "epsilon hat"), so the port passes ``epsilon=1e-8``;
* ``learning_rate``: a float becomes a float32 Keras variable (floatx), so a float64 model
  would train with 1e-3 rounded to float32 (4.7e-8 relative), and so would a callable
  returning the Python float (cast as below); the port passes a callable returning a
  tensor of the model's dtype;
* ``beta_1``/``beta_2``: Adam computes ``beta ** t`` from ``ops.cast(beta, dtype)``, and
  ``tf.cast`` of a Python float rounds it to float32 first (0.999 -> 0.99900001287), so
  ``sqrt(1 - beta2^t)`` is off by 6e-6 relative in float64; the port passes the betas as
  tensors of the model's dtype.

Dropout: the harness's keep-mask as ``x * mask / keep_prob``; without masks,
``tf.nn.dropout(x, rate=1 - keep_prob)`` (:func:`native_dropout`).
"""

from __future__ import annotations

import numpy as np

from parity.portkit.variants import build_variant
from tf_impl import tensorflow
from tf_impl.v2 import framework_info

__all__ = ["build", "framework_info", "ConvnetPort", "native_dropout", "KERAS_ADAM"]

#: Keras Adam defaults this port overrides to mirror TF1 (see the module docstring).
KERAS_ADAM = {
    "default_epsilon": 1e-7,
    "tf1_epsilon": 1e-8,
    "learning_rate_variable_dtype": "float32 (floatx)",
    "python_float_betas_cast_through": "float32",
}
LAYERS = ("conv1", "pool1", "conv2", "pool2", "fc1", "fc1_drop", "logits")


class ConvnetPort:
    def __init__(self, case, dtype):
        tf = tensorflow()
        import keras

        self.tf, self.case, self.dtype = tf, case, dtype
        self.image = tuple(case.option("image", (28, 28, 1)))
        stride = int(case.option("conv1_stride", 1))
        shapes = {n: spec.shape for n, spec in case.params.items()}
        units, classes = shapes["bd1"][0], shapes["out_b"][0]
        self.keep_prob = float(case.option("keep_prob", 0.75))
        L = keras.layers
        self.conv1 = L.Conv2D(32, 5, strides=stride, padding="same", activation="relu", dtype=dtype)
        self.pool1 = L.MaxPooling2D(2, padding="same", dtype=dtype)
        self.conv2 = L.Conv2D(64, 5, padding="same", activation="relu", dtype=dtype)
        self.pool2 = L.MaxPooling2D(2, padding="same", dtype=dtype)
        self.flatten = L.Flatten(dtype=dtype)
        self.fc1 = L.Dense(units, activation="relu", dtype=dtype)
        self.out = L.Dense(classes, dtype=dtype)
        # Build every layer eagerly (the tf.function must not create variables).
        probe = tf.zeros((1,) + self.image, dtype=dtype)
        self._forward(probe, None)
        self.vars = {
            "wc1": self.conv1.kernel,
            "bc1": self.conv1.bias,
            "wc2": self.conv2.kernel,
            "bc2": self.conv2.bias,
            "wd1": self.fc1.kernel,
            "bd1": self.fc1.bias,
            "out_w": self.out.kernel,
            "out_b": self.out.bias,
        }
        for name, var in self.vars.items():
            if tuple(var.shape) != tuple(shapes[name]):
                raise ValueError(f"{name}: the Keras layer built {tuple(var.shape)}, the case declares {shapes[name]}")
        lr = float(case.option("lr"))
        # Hyper-parameters as tensors of the model's dtype: Adam casts them with
        # ops.cast(x, dtype), and tf.cast of a Python float goes through float32.
        self.opt = keras.optimizers.Adam(
            learning_rate=lambda: tf.constant(lr, dtype=dtype),
            beta_1=tf.constant(float(case.option("beta1")), dtype=dtype),
            beta_2=tf.constant(float(case.option("beta2")), dtype=dtype),
            epsilon=float(case.option("epsilon")),
        )
        self.lr = lr
        self.opt.build(list(self.vars.values()))
        self._step_fn = tf.function(self._train_step)

    def _forward(self, image, mask):
        tf = self.tf
        acts = {}
        acts["conv1"] = self.conv1(image)
        acts["pool1"] = self.pool1(acts["conv1"])
        acts["conv2"] = self.conv2(acts["pool1"])
        acts["pool2"] = self.pool2(acts["conv2"])
        acts["fc1"] = self.fc1(self.flatten(acts["pool2"]))
        if mask is not None:
            acts["fc1_drop"] = acts["fc1"] * mask / tf.constant(self.keep_prob, acts["fc1"].dtype)
        else:
            acts["fc1_drop"] = tf.nn.dropout(acts["fc1"], rate=1.0 - self.keep_prob)
        acts["logits"] = self.out(acts["fc1_drop"])
        return acts

    def _train_step(self, x, y, mask):
        tf = self.tf
        names = list(self.vars)
        variables = [self.vars[n] for n in names]
        with tf.GradientTape() as tape:
            acts = self._forward(tf.reshape(x, (-1,) + self.image), mask)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=acts["logits"]))
        grads = tape.gradient(loss, variables)
        self.opt.apply_gradients(zip(grads, variables))
        return acts, loss, dict(zip(names, grads))

    def parameters(self):
        return {n: v.numpy() for n, v in self.vars.items()}  # .numpy(): a copy of the variable

    def load(self, params):
        for n, v in self.vars.items():
            v.assign(np.asarray(params[n], dtype=self.dtype))

    def step(self, batch):
        tf = self.tf
        mask = tf.constant(batch["keep_mask"], dtype=self.dtype) if "keep_mask" in batch else None
        acts, loss, grads = self._step_fn(
            tf.constant(batch["x"], dtype=self.dtype), tf.constant(batch["y"], dtype=self.dtype), mask
        )
        return {
            "forward": {k: v.numpy() for k, v in acts.items()},
            "loss": {"loss": loss.numpy()},
            "gradients": {k: v.numpy() for k, v in grads.items()},
            "learning_rate": {"lr": np.asarray(self.lr, dtype=self.dtype)},
            "parameters": self.parameters(),
            "slots": self._slots(),
        }

    def _slots(self):
        slots = {}
        for n, v in self.vars.items():
            i = self.opt._get_variable_index(v)
            slots[f"{n}/m"] = self.opt._momentums[i].numpy()
            slots[f"{n}/v"] = self.opt._velocities[i].numpy()
        # Keras keeps a step counter and recomputes beta^(t+1) each step; reported as TF1's
        # accumulators after the update.
        t = int(self.opt.iterations.numpy())
        b1, b2 = float(self.case.option("beta1")), float(self.case.option("beta2"))
        slots["beta1_power"] = np.asarray(b1 ** (t + 1), dtype=self.dtype)
        slots["beta2_power"] = np.asarray(b2 ** (t + 1), dtype=self.dtype)
        return slots

    def settings(self) -> dict:
        return {
            "optimizer": "keras.optimizers.Adam",
            "adam_epsilon": float(self.opt.epsilon),
            "adam_epsilon_placement": "epsilon-hat: sqrt(v) + eps, v uncorrected",
            "dropout": "x * keep_mask / keep_prob (tf.nn.dropout(rate=1-keep_prob) without masks)",
            "keep_prob": self.keep_prob,
            "padding": "same",
        }


def native_dropout(x: np.ndarray, keep_prob: float, *, seed: int = 0) -> np.ndarray:
    """Apply TF2's ``tf.nn.dropout(x, rate=1 - keep_prob)`` to ``x``."""
    tf = tensorflow()
    return tf.nn.dropout(tf.constant(x), rate=1.0 - keep_prob, seed=seed).numpy()


def build(case, dtype, variant=None):
    """Build the TF2 convnet port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return ConvnetPort(case, dtype)
