"""BatchNorm and train/inference-mode pitfalls, TF1 reference: ``x -> BN -> Dense``, MSE, SGD.

BN is written with ``tf.nn.moments`` / ``tf.nn.batch_normalization`` and moving averages
``moving = moving*momentum + batch*(1 - momentum)`` in ``UPDATE_OPS``, run through
``control_dependencies`` around the train op, as ``tf.compat.v1.layers.batch_normalization``
does. ``options["variance"]``: ``"unbiased"`` (the moving variance gets ``n/(n-1)`` times the
batch variance: TF's fused kernel, ``FusedBatchNormV3``, which has no float64 kernel, hence
written out) or ``"biased"`` (non-fused tf.layers on 2-D inputs, Keras 3).
The mode is a ``placeholder_with_default(False)`` like Keras's learning phase, fed True.

Variant ``wrong``: ``bn-update-ops`` (the train op without the UPDATE_OPS dependency: moving
statistics never move), ``learning-phase`` (the learning phase not fed: inference mode).
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "BatchNormPort"]


class BatchNormPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        mistake = self.case.option("pitfall") if self.variant == "wrong" else None
        self.mistake = mistake
        X = tf1.placeholder(dt, [None, None], name="X")
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"X": X, "T": T}
        zeros = tf1.zeros_initializer()
        v = {n: tf1.get_variable(n, shape=self.case.params[n].shape, initializer=zeros, dtype=dt,
                                 trainable=self.case.params[n].trainable) for n in self.case.params}
        self.variables = v
        training = tf1.placeholder_with_default(False, [], name="keras_learning_phase")
        self.training = training
        m, eps = o["momentum"], o["epsilon"]
        mean, var = tf.nn.moments(X, axes=[0])
        n = tf.cast(tf.shape(X)[0], dt)
        batch_var = var * n / (n - 1.0) if o.get("variance", "unbiased") == "unbiased" else var

        def train_branch():
            y = tf.nn.batch_normalization(X, mean, var, v["beta"], v["gamma"], eps)
            return y, v["moving_mean"] * m + mean * (1.0 - m), v["moving_variance"] * m + batch_var * (1.0 - m)

        def infer_branch():
            y = tf.nn.batch_normalization(X, v["moving_mean"], v["moving_variance"], v["beta"], v["gamma"], eps)
            return y, tf.identity(v["moving_mean"]), tf.identity(v["moving_variance"])

        # Both branches are built and the flag selects (tf.where, as cheap as smart_cond here;
        # tf.cond's functional If costs seconds of graph building for nothing).
        (y_t, mean_t, var_t), (y_i, mean_i, var_i) = train_branch(), infer_branch()
        y, new_mean, new_var = tf.where(training, y_t, y_i), tf.where(training, mean_t, mean_i), tf.where(training, var_t, var_i)
        for op in (v["moving_mean"].assign(new_mean), v["moving_variance"].assign(new_var)):
            tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS, op)
        out = tf.matmul(y, v["K"])
        loss = tf.reduce_mean(tf.square(out - T))
        lr = tf.constant(o["lr"], dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        names = [n for n in self.case.params if self.case.params[n].trainable]
        gv = opt.compute_gradients(loss, [v[n] for n in names])
        if mistake == "bn-update-ops":
            train = opt.apply_gradients(gv)  # the mistake: UPDATE_OPS never run
        else:
            with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
                train = opt.apply_gradients(gv)
        self.before = {
            "forward": {"bn": y, "out": out},
            "loss": {"loss": loss},
            "gradients": {k: g for k, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [train]
        self.after = {
            "parameters": {k: v[k] for k in names},
            "state": {"moving_mean": v["moving_mean"], "moving_variance": v["moving_variance"]},
        }

    def feed(self, batch):
        feed = super().feed(batch)
        if self.mistake != "learning-phase":
            feed[self.training] = True  # the fix: feed the learning phase (or pass training=True)
        return feed

    def settings(self) -> dict:
        o = self.case.options
        return {
            "framework_convention": "tf",
            "bn_momentum": o["momentum"],
            "bn_momentum_convention": "tf",
            "bn_epsilon": o["epsilon"],
            "bn_running_var": o.get("variance", "unbiased"),
        }


def build(case, dtype, variant=None):
    """Build the TF1 BatchNorm pitfall port (``variant="wrong"``: make the TF-side mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the TF1 BatchNorm pitfall port")
    return BatchNormPort(case, dtype, variant)
