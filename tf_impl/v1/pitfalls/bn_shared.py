"""A BatchNorm called twice per step, TF1 reference (``parity/cases/catalog/pitfalls_bn_shared.py``): ``X -> BN ->
Dense`` and ``X2 -> BN -> Dense`` with one set of weights, the two MSE losses summed, SGD.

As ``tf.contrib.layers.batch_norm(updates_collections=None)`` builds it (TF 1.15: fused, so the batch variance
the update takes is Bessel-corrected), each call's ``assign_moving_average`` subtracts ``(1 - momentum) *
(moving - batch_i)`` from a read of the moving statistic that the graph does not order after the other call's
update; TF runs the reads first, so the step stores ``moving - sum_i (1 - momentum)(moving - batch_i)``. Written
here as that one expression (one read, one assign), so the reference is the same in every run.
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "SharedBatchNormPort"]


class SharedBatchNormPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        ph = {k: tf1.placeholder(dt, [None, 4 if k.startswith("X") else 1], name=k) for k in ("X", "X2", "T", "T2")}
        self.placeholders = ph
        zeros = tf1.zeros_initializer()
        v = {n: tf1.get_variable(n, shape=self.case.params[n].shape, initializer=zeros, dtype=dt,
                                 trainable=self.case.params[n].trainable) for n in self.case.params}
        self.variables = v
        m, eps = o["momentum"], o["epsilon"]

        def call(x):
            mean, var = tf.nn.moments(x, axes=[0])
            n = tf.cast(tf.shape(x)[0], dt)
            y = tf.nn.batch_normalization(x, mean, var, v["beta"], v["gamma"], eps)
            return y, mean, var * n / (n - 1.0)  # the fused kernel's batch variance

        (y1, mean1, var1), (y2, mean2, var2) = call(ph["X"]), call(ph["X2"])
        mm, mv = v["moving_mean"], v["moving_variance"]
        new_mean = mm - (1.0 - m) * (mm - mean1) - (1.0 - m) * (mm - mean2)  # both calls' updates from one read
        new_var = mv - (1.0 - m) * (mv - var1) - (1.0 - m) * (mv - var2)
        updates = [mm.assign(new_mean), mv.assign(new_var)]
        out1, out2 = tf.matmul(y1, v["K"]), tf.matmul(y2, v["K"])
        loss = tf.reduce_mean(tf.square(out1 - ph["T"])) + tf.reduce_mean(tf.square(out2 - ph["T2"]))
        opt = tf1.train.GradientDescentOptimizer(tf.constant(o["lr"], dt))
        names = [n for n in self.case.params if self.case.params[n].trainable]
        gv = opt.compute_gradients(loss, [v[n] for n in names])
        with tf.control_dependencies(updates):
            train = opt.apply_gradients(gv)
        self.before = {
            "forward": {"bn": y1, "out": out1, "bn_2": y2, "out_2": out2},
            "loss": {"loss": loss},
            "gradients": {k: g for k, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": tf.constant(o["lr"], dt)},
        }
        self.train_ops = [train]
        self.after = {
            "parameters": {k: v[k] for k in names},
            "state": {"moving_mean": mm, "moving_variance": mv},
        }

    def settings(self) -> dict:
        o = self.case.options
        return {"framework_convention": "tf", "bn_momentum": o["momentum"], "bn_momentum_convention": "tf",
                "bn_epsilon": o["epsilon"], "bn_running_var": "unbiased",
                "bn_shared_calls": 2}  # two calls' updates in one step, each from the statistics the step read


def build(case, dtype, variant=None):
    """Build the TF1 shared-BatchNorm pitfall port (no TF-side mistake: ``variant`` must be None)."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 shared-BatchNorm pitfall port")
    return SharedBatchNormPort(case, dtype, variant)
