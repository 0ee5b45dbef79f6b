"""Optimizer pitfalls whose reference is Keras: SGD momentum with a learning-rate schedule.

The same two-layer linear net as ``tf_impl/v1/pitfalls/optim.py``, trained eagerly with
``keras.optimizers.SGD(learning_rate=PiecewiseConstantDecay(...), momentum=mu)``. Keras keeps
the learning rate inside its velocity (``m = mu*m - lr*g; w += m``), torch outside
(``buf = mu*buf + g; w -= lr*buf``): equal while lr is constant, not after it changes.
"""

from __future__ import annotations

from tf_impl import tensorflow
from tf_impl.v2 import VariablesPort, keras_framework_info as framework_info

__all__ = ["build", "framework_info", "KerasOptimPort"]


class KerasOptimPort(VariablesPort):
    def __init__(self, case, dtype, variant=None):
        import keras

        tf = tensorflow()
        self.tf, self.case, self.dtype = tf, case, dtype
        o = self.o = dict(case.options)
        self.vars = {
            n: tf.Variable(tf.zeros(case.params[n].shape, dtype=dtype), name=n) for n in ("W1", "W2")
        }
        sched = o["schedule"]
        lr = keras.optimizers.schedules.PiecewiseConstantDecay(list(sched["boundaries"]), list(sched["values"]))
        self.opt = keras.optimizers.SGD(learning_rate=lr, momentum=o["momentum"])
        self.opt.build(list(self.vars.values()))

    def step(self, batch):
        tf = self.tf
        X, T = tf.constant(batch["X"]), tf.constant(batch["T"])
        with tf.GradientTape() as tape:
            y = tf.matmul(tf.matmul(X, self.vars["W1"]), self.vars["W2"])
            loss = tf.reduce_mean(tf.square(y - T))
        names = list(self.vars)
        grads = tape.gradient(loss, [self.vars[n] for n in names])
        lr = float(self.opt.learning_rate.numpy())  # the schedule at the current iteration
        self.opt.apply_gradients(zip(grads, [self.vars[n] for n in names]))
        return {
            "forward": {"y": y.numpy()},
            "loss": {"loss": loss.numpy()},
            "gradients": {n: g.numpy() for n, g in zip(names, grads)},
            "learning_rate": {"lr": lr},
            "parameters": self.parameters(),
        }

    def settings(self) -> dict:
        return {"framework_convention": "keras", "optimizer": "momentum", "momentum": self.o["momentum"], "nesterov": False, "dampening": 0.0}


def build(case, dtype, variant=None):
    """Build the Keras SGD-momentum port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the Keras optimizer pitfall port")
    return KerasOptimPort(case, dtype, variant)
