"""Loss pitfalls whose reference is Keras: probability-space crossentropy clips at 1e-7.

``keras.losses.CategoricalCrossentropy()`` (``from_logits=False``) on the output of an eager
``tf.nn.softmax``: Keras renormalises, clips the probabilities to ``[1e-7, 1 - 1e-7]`` and
takes ``-sum(y log p)``, so a saturated true-class probability costs at most 16.12.
"""

from __future__ import annotations

from tf_impl import tensorflow
from tf_impl.v2 import VariablesPort, keras_framework_info as framework_info

__all__ = ["build", "framework_info", "KerasLossPort"]


class KerasLossPort(VariablesPort):
    def __init__(self, case, dtype, variant=None):
        import keras

        tf = tensorflow()
        self.tf, self.case, self.dtype = tf, case, dtype
        self.lr = case.option("lr")
        self.vars = {n: tf.Variable(tf.zeros(s.shape, dtype=dtype), name=n) for n, s in case.params.items()}
        # A Keras 3 loss computes in its own dtype (floatx, float32) unless told otherwise: a
        # float64 model would get a float32 loss.
        self.loss_fn = keras.losses.CategoricalCrossentropy(dtype=dtype)

    def step(self, batch):
        tf = self.tf
        X, Y = tf.constant(batch["X"]), tf.constant(batch["Y"])
        names = list(self.vars)
        with tf.GradientTape() as tape:
            logits = tf.matmul(X, self.vars["W"]) + self.vars["b"]
            probs = tf.nn.softmax(logits)
            loss = self.loss_fn(Y, probs)
        grads = tape.gradient(loss, [self.vars[n] for n in names])
        for n, g in zip(names, grads):
            self.vars[n].assign_sub(self.lr * g)
        return {
            "forward": {"logits": logits.numpy(), "probs": probs.numpy()},
            "loss": {"loss": loss.numpy()},
            "gradients": {n: g.numpy() for n, g in zip(names, grads)},
            "learning_rate": {"lr": self.lr},
            "parameters": self.parameters(),
        }

    def settings(self) -> dict:
        return {"framework_convention": "keras", "loss_reduction": "mean", "probability_clip": 1e-7}


def build(case, dtype, variant=None):
    """Build the Keras crossentropy port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the Keras loss pitfall port")
    return KerasLossPort(case, dtype, variant)
