"""Decoupled weight decay, Keras reference: ``keras.optimizers.AdamW(weight_decay=wd)``.

``y = relu(X W1 + b1) W2 + b2``, MSE, trained eagerly. Keras's AdamW (like ``Adam(weight_decay=)``
in Keras 3) shrinks every variable by ``lr * wd * w`` before the Adam step, outside the
moments; the gradient and the loss do not contain the decay. Its Adam adds epsilon to the
uncorrected ``sqrt(v)`` (epsilon-hat), as TF1 does.
"""

from __future__ import annotations

from tf_impl import tensorflow
from tf_impl.v2 import VariablesPort, keras_framework_info as framework_info

__all__ = ["build", "framework_info", "KerasDecayPort"]


class KerasDecayPort(VariablesPort):
    def __init__(self, case, dtype, variant=None):
        import keras

        tf = tensorflow()
        self.tf, self.case, self.dtype = tf, case, dtype
        o = self.o = dict(case.options)
        self.vars = {n: tf.Variable(tf.zeros(case.params[n].shape, dtype=dtype), name=n) for n in case.params}
        self.opt = keras.optimizers.AdamW(
            learning_rate=o["lr"], weight_decay=o["weight_decay"], beta_1=o["beta1"], beta_2=o["beta2"], epsilon=o["epsilon"]
        )
        self.opt.build(list(self.vars.values()))

    def step(self, batch):
        tf, v = self.tf, self.vars
        X, T = tf.constant(batch["X"]), tf.constant(batch["T"])
        with tf.GradientTape() as tape:
            h = tf.nn.relu(tf.matmul(X, v["W1"]) + v["b1"])
            y = tf.matmul(h, v["W2"]) + v["b2"]
            loss = tf.reduce_mean(tf.square(y - T))
        names = list(v)
        grads = tape.gradient(loss, [v[n] for n in names])
        self.opt.apply_gradients(zip(grads, [v[n] for n in names]))
        slots = {}
        for n in names:
            slots[f"m/{n}"] = self.opt._momentums[self.opt._get_variable_index(v[n])].numpy()
            slots[f"v/{n}"] = self.opt._velocities[self.opt._get_variable_index(v[n])].numpy()
        return {
            "forward": {"hidden": h.numpy(), "y": y.numpy()},
            "loss": {"loss": loss.numpy()},
            "gradients": {n: g.numpy() for n, g in zip(names, grads)},
            "learning_rate": {"lr": self.o["lr"]},
            "parameters": self.parameters(),
            "slots": slots,
        }

    def settings(self) -> dict:
        return {"framework_convention": "keras", "optimizer": "adamw",
                "weight_decay": {"coefficient": self.o["weight_decay"], "on": "all", "form": "decoupled (x lr)"}}


def build(case, dtype, variant=None):
    """Build the Keras AdamW port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the Keras decay pitfall port")
    return KerasDecayPort(case, dtype, variant)
