"""Seed 001: the MNIST convnet in TF1 graph code, as the seed wrote it.

``tf.nn.conv2d`` SAME + ``bias_add`` + ReLU, ``max_pool`` 2 SAME, twice; reshape to
``[-1, 7*7*64]`` (NHWC flatten, (h, w, c) order); dense 1024 ReLU; dropout; dense 10;
``softmax_cross_entropy_with_logits`` under ``reduce_mean``; ``AdamOptimizer``.

Dropout: the harness's keep-mask is fed through a placeholder and applied as
``x * mask / keep_prob`` (keep_prob is a placeholder too, as in the seed), so every port
drops the same units. Without masks in the data the port uses TF1's own
``tf.compat.v1.nn.dropout(x, keep_prob=...)`` (see :func:`native_dropout`).

Adam's hyper-parameters are tensors of the variables' dtype: ``AdamOptimizer`` turns a
Python float into a float32 tensor and casts it, so a float64 graph given ``1e-3`` would
train with 1e-3 rounded to float32 (and beta1 = 0.8999999762).

The seed's own bug (a new image-summary op every step, which the finalized graph refuses)
lives in ``tf_impl/v1/mistakes/convnet.py``.
"""

from __future__ import annotations

import numpy as np

from parity.portkit.variants import build_variant
from tf_impl import tensorflow
from tf_impl.v1._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "ConvnetPort", "native_dropout"]

#: forward activations, in network order (NHWC)
LAYERS = ("conv1", "pool1", "conv2", "pool2", "fc1", "fc1_drop", "logits")


class ConvnetPort(GraphPort):
    def define(self, tf, tf1):
        case, dt = self.case, tf_dtype(self.dtype)
        h, w, c = case.option("image", (28, 28, 1))
        stride = int(case.option("conv1_stride", 1))
        shapes = {n: spec.shape for n, spec in case.params.items()}
        units, classes = shapes["bd1"][0], shapes["out_b"][0]
        init = tf1.random_normal_initializer(0.0, 1.0, dtype=dt)  # overwritten by load()
        for name, shape in shapes.items():
            self.variables[name] = tf1.get_variable(name, shape=shape, initializer=init, dtype=dt)
        v = self.variables

        x = tf1.placeholder(dt, [None, h * w * c], name="x")
        y = tf1.placeholder(dt, [None, classes], name="y")
        self.keep_prob = tf1.placeholder(dt, [], name="keep_prob")
        self.placeholders = {"x": x, "y": y}
        self.masked = case.data.args.get("keep_prob") is not None

        def conv(inp, kernel, bias, s):
            out = tf.nn.conv2d(inp, kernel, strides=[1, s, s, 1], padding="SAME")
            return tf.nn.relu(tf.nn.bias_add(out, bias))

        def pool(inp):
            return tf1.nn.max_pool(inp, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="SAME")

        image = tf.reshape(x, [-1, h, w, c])
        conv1 = conv(image, v["wc1"], v["bc1"], stride)
        pool1 = pool(conv1)
        conv2 = conv(pool1, v["wc2"], v["bc2"], 1)
        pool2 = pool(conv2)
        flat = tf.reshape(pool2, [-1, shapes["wd1"][0]])
        fc1 = tf.nn.relu(tf.add(tf.matmul(flat, v["wd1"]), v["bd1"]))
        if self.masked:
            mask = tf1.placeholder(dt, [None, units], name="keep_mask")
            self.placeholders["keep_mask"] = mask
            fc1_drop = fc1 * mask / self.keep_prob
        else:
            fc1_drop = tf1.nn.dropout(fc1, keep_prob=self.keep_prob)
        logits = tf.add(tf.matmul(fc1_drop, v["out_w"]), v["out_b"])
        loss = tf.reduce_mean(tf1.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))

        hp = {k: tf.constant(case.option(k), dtype=dt) for k in ("lr", "beta1", "beta2", "epsilon")}
        opt = tf1.train.AdamOptimizer(hp["lr"], beta1=hp["beta1"], beta2=hp["beta2"], epsilon=hp["epsilon"])
        names = list(self.variables)
        grads_and_vars = opt.compute_gradients(loss, [v[n] for n in names])
        self.train_ops = [opt.apply_gradients(grads_and_vars)]
        beta1_power, beta2_power = opt._get_beta_accumulators()
        acts = dict(zip(LAYERS, (conv1, pool1, conv2, pool2, fc1, fc1_drop, logits)))
        self.before = {
            "forward": acts,
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, grads_and_vars)},
            "learning_rate": {"lr": hp["lr"]},
        }
        slots = {}
        for n in names:
            slots[f"{n}/m"] = opt.get_slot(v[n], "m")
            slots[f"{n}/v"] = opt.get_slot(v[n], "v")
        # After the update the accumulators hold beta^(t+1): what the next step uses.
        slots["beta1_power"], slots["beta2_power"] = beta1_power, beta2_power
        self.after = {"parameters": dict(self.variables), "slots": slots}

    def feed(self, batch):
        out = super().feed(batch)
        out[self.keep_prob] = self.case.option("keep_prob", 0.75)
        return out

    def _step(self, batch):
        # One run computes the gradients, fetches them and applies them (apply_gradients
        # consumes the very tensors fetched), instead of the base class's two runs that
        # compute the forward and backward passes twice; the updated values are read after.
        feed = self.feed(batch)
        out = self.session.run({"before": self.before, "train": self.train_ops}, feed)["before"]
        out.update(self.session.run(self.after, feed))
        return out

    def settings(self) -> dict:
        return {
            "optimizer": "tf.compat.v1.train.AdamOptimizer",
            "adam_epsilon": self.case.option("epsilon"),
            "adam_epsilon_placement": "epsilon-hat: sqrt(v) + eps, v uncorrected",
            "dropout": "x * keep_mask / keep_prob" if self.masked else "tf.compat.v1.nn.dropout(keep_prob)",
            "keep_prob": self.case.option("keep_prob"),
            "padding": "SAME",
        }


def native_dropout(x: np.ndarray, keep_prob: float, *, seed: int = 0) -> np.ndarray:
    """Apply TF1's own ``tf.compat.v1.nn.dropout(x, keep_prob=keep_prob)`` to ``x`` (training mode)."""
    tf = tensorflow()
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        inp = tf1.placeholder(tf.as_dtype(np.asarray(x).dtype), np.shape(x))
        out = tf1.nn.dropout(inp, keep_prob=keep_prob)
    with tf1.Session(graph=graph) as sess:
        return sess.run(out, {inp: x})


def build(case, dtype, variant=None):
    """Build the TF1 convnet port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return ConvnetPort(case, dtype)
