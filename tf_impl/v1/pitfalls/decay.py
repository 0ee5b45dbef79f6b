"""Weight decay and "no gradient this step", TF1 reference: a small MLP trained by tf.train.

* scenario ``l2``: ``y = relu(X W1 + b1) W2 + b2``, loss ``mean((y - T)^2) + wd * (l2_loss(W1) +
  l2_loss(W2))`` with plain SGD. ``tf.nn.l2_loss(W)`` is ``sum(W**2) / 2``: the gradient of the
  term is ``wd * W``. The biases are not decayed (the usual TF1 idiom: kernels only).
* scenario ``nograd``: two heads on a shared layer, ``y_a = X W1 W2`` and ``y_b = X W1 W3``; loss
  ``mean((y_a - T)^2) + use * mean((y_b - T)^2)`` where ``use`` (0 or 1) is fed each step. With
  ``use = 0`` the graph still computes W3's gradient: dense zeros, so Adam decays W3's moments
  and keeps moving W3 on its momentum.
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "DecayPort"]


class DecayPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        X = tf1.placeholder(dt, [None, None], name="X")
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"X": X, "T": T}
        init = tf1.zeros_initializer()  # load() sets the harness's values
        v = self.variables = {
            n: tf1.get_variable(n, shape=self.case.params[n].shape, initializer=init, dtype=dt) for n in self.case.params
        }
        lr = tf.constant(o["lr"], dt)
        if o["scenario"] == "l2":
            h = tf.nn.relu(tf.matmul(X, v["W1"]) + v["b1"])
            y = tf.matmul(h, v["W2"]) + v["b2"]
            # tf.nn.l2_loss(W) = sum(W ** 2) / 2: the kernels only, as TF1 models usually do
            decay = o["weight_decay"] * tf.add_n([tf.nn.l2_loss(v["W1"]), tf.nn.l2_loss(v["W2"])])
            loss = tf.reduce_mean(tf.square(y - T)) + decay
            opt = tf1.train.GradientDescentOptimizer(lr)
            forward = {"hidden": h, "y": y}
        else:
            use = tf1.placeholder(dt, [], name="use")
            self.placeholders["use"] = use
            shared = tf.matmul(X, v["W1"])
            ya, yb = tf.matmul(shared, v["W2"]), tf.matmul(shared, v["W3"])
            loss = tf.reduce_mean(tf.square(ya - T)) + use * tf.reduce_mean(tf.square(yb - T))
            opt = tf1.train.AdamOptimizer(lr, o["beta1"], o["beta2"], o["epsilon"])
            forward = {"y_a": ya, "y_b": yb}
        names = list(v)
        gv = opt.compute_gradients(loss, [v[n] for n in names])
        self.before = {"forward": forward, "loss": {"loss": loss}, "gradients": {n: g for n, (g, _) in zip(names, gv)},
                       "learning_rate": {"lr": lr}}
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(v)}
        if o["scenario"] == "nograd":
            self.after["slots"] = {f"{s}/{n}": opt.get_slot(v[n], s) for n in names for s in ("m", "v")}

    def settings(self) -> dict:
        o = self.case.options
        out = {"framework_convention": "tf", "optimizer": "sgd" if o["scenario"] == "l2" else "adam"}
        if o["scenario"] == "l2":
            # canonical: the gradient of the decay term is coefficient * W, on these parameters, in the loss
            out["weight_decay"] = {"coefficient": o["weight_decay"], "on": "kernels", "form": "L2 in the loss"}
        else:
            out["no_gradient"] = "zeros (the optimizer updates the slots)"
        return out


def build(case, dtype, variant=None):
    """Build the TF1 weight-decay / no-gradient port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 decay pitfall port")
    return DecayPort(case, dtype, variant)
