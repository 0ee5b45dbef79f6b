"""Loss pitfalls, TF1 reference: softmax regression, ``reduce_mean(softmax_cross_entropy_with_logits)``.

Trained by ``AdamOptimizer``: Adam is invariant to the loss's scale, so a sum-vs-mean
mistake leaves the parameters almost untouched and shows in the loss and the gradients.
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "LossPort"]


class LossPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        X = tf1.placeholder(dt, [None, self.case.params["W"].shape[0]], name="X")
        Y = tf1.placeholder(dt, [None, self.case.params["W"].shape[1]], name="Y")
        self.placeholders = {"X": X, "Y": Y}
        zeros = tf1.zeros_initializer()
        self.variables = {n: tf1.get_variable(n, shape=s.shape, initializer=zeros, dtype=dt) for n, s in self.case.params.items()}
        logits = tf.matmul(X, self.variables["W"]) + self.variables["b"]
        per_example = tf.nn.softmax_cross_entropy_with_logits(labels=Y, logits=logits)  # [N]: the user reduces
        loss = tf.reduce_mean(per_example)
        lr = tf.constant(o["lr"], dt)
        opt = tf1.train.AdamOptimizer(lr, o["beta1"], o["beta2"], o["epsilon"])
        names = list(self.variables)
        gv = opt.compute_gradients(loss, [self.variables[n] for n in names])
        self.before = {
            "forward": {"logits": logits, "probs": tf.nn.softmax(logits)},
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(self.variables)}

    def settings(self) -> dict:
        return {"framework_convention": "tf", "loss_reduction": "mean", "loss_input": "logits"}


def build(case, dtype, variant=None):
    """Build the TF1 loss-pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 loss pitfall port")
    return LossPort(case, dtype, variant)
