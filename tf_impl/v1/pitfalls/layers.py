"""Layer pitfalls, TF1 reference: small networks in ``tf.nn`` ops (NHWC, HWIO), trained by SGD.

``options["scenario"]`` picks the network (see :data:`SCENARIOS`); the loss is
``mean(out^2)`` (``mean((out - T)^2)`` when the batch has ``T``). Every port reports its
named forward tensors, the loss, the gradients of every parameter and the parameters.
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "LayersPort", "SCENARIOS"]


def _mlp(tf, p, x, o):
    act = {"relu": tf.nn.relu, "tanh": tf.nn.tanh}[o.get("activation", "relu")]
    d1 = tf.matmul(x["X"], p["K1"]) + p["b1"]
    return {"dense1": d1, "out": tf.matmul(act(d1), p["K2"])}


def _gelu(tf, p, x, o):
    pre = tf.matmul(x["X"], p["K1"]) + p["b1"]
    # The exact (erf) GELU of tf.nn.gelu(approximate=False) / keras.activations.gelu, written
    # out: tf.nn.gelu casts its 1/sqrt(2) from a float32 constant, so in float64 it is off by
    # up to 5e-9 (measured on [-4, 4]), which would hide nothing here but fail float64 parity.
    act = 0.5 * pre * (1.0 + tf.math.erf(pre * 0.7071067811865476))
    return {"pre": pre, "act": act, "out": tf.matmul(act, p["K2"])}


def _leaky(tf, p, x, o):
    pre = tf.matmul(x["X"], p["K1"]) + p["b1"]
    act = tf.nn.leaky_relu(pre, alpha=o["alpha"])  # TF's default alpha is 0.2 (Keras LeakyReLU: 0.3)
    return {"pre": pre, "act": act, "out": tf.matmul(act, p["K2"])}


def _layernorm(tf, p, x, o):
    # keras.layers.LayerNormalization(epsilon=1e-3): moments over the last axis.
    mean, var = tf.nn.moments(x["X"], axes=[-1], keepdims=True)
    ln = tf.nn.batch_normalization(x["X"], mean, var, p["beta"], p["gamma"], o["epsilon"])
    return {"ln": ln, "out": tf.matmul(ln, p["K"])}


def _head(tf, h, k2):
    return tf.matmul(tf.reduce_mean(h, axis=[1, 2]), k2)


def _conv(tf, p, x, o):
    conv = tf.nn.conv2d(x["X"], p["K"], strides=o.get("stride", 1), padding=o.get("padding", "VALID")) + p["b"]
    return {"conv": conv, "out": _head(tf, conv, p["K2"])}


def _flatten(tf, p, x, o):
    conv = tf.nn.conv2d(x["X"], p["K"], strides=1, padding="VALID") + p["b"]
    flat = tf.reshape(conv, [tf.shape(conv)[0], -1])  # NHWC: (h, w, c) order
    dense = tf.matmul(flat, p["Kd"])
    return {"conv": conv, "dense": dense, "out": dense}


def _pool(tf, p, x, o):
    conv = tf.nn.conv2d(x["X"], p["K"], strides=1, padding="VALID")
    k, s = o["pool_size"], o["pool_stride"]
    fn = tf.nn.max_pool2d if o["pool"] == "max" else tf.nn.avg_pool2d
    pool = fn(conv, ksize=k, strides=s, padding="SAME")
    return {"conv": conv, "pool": pool, "out": _head(tf, pool, p["K2"])}


def _dropout(tf, p, x, o):
    hidden = tf.nn.relu(tf.matmul(x["X"], p["K1"]) + p["b1"])
    keep = o["keep_prob"]
    # tf.compat.v1.nn.dropout(x, keep_prob): x / keep_prob * floor(keep_prob + U), U ~ U[0, 1):
    # the harness feeds U so every port draws the same mask.
    drop = hidden / keep * tf.floor(keep + x["U"])
    return {"hidden": hidden, "dropout": drop, "out": tf.matmul(drop, p["K2"])}


def _spatial_dropout(tf, p, x, o):
    # Keras SpatialDropout2D / tf.nn.dropout(noise_shape=[N, 1, 1, C]): one draw per image and channel (U: [N, C])
    conv = tf.nn.relu(tf.nn.conv2d(x["X"], p["K"], strides=1, padding="VALID") + p["b"])
    keep = o["keep_prob"]
    drop = conv / keep * tf.floor(keep + x["U"][:, None, None, :])
    return {"conv": conv, "dropout": drop, "out": _head(tf, drop, p["K2"])}


def _two_dropouts(tf, p, x, o):
    # an input dropout (mask U0) and a hidden one (mask U), both keep_prob
    keep = o["keep_prob"]
    xin = x["X"] / keep * tf.floor(keep + x["U0"])
    hidden = tf.nn.relu(tf.matmul(xin, p["K1"]) + p["b1"])
    drop = hidden / keep * tf.floor(keep + x["U"])
    return {"input_dropout": xin, "hidden": hidden, "dropout": drop, "out": tf.matmul(drop, p["K2"])}


SCENARIOS = {
    "dense-transpose": _mlp,
    "mlp": _mlp,
    "tf32-emulated": _mlp,
    "gelu-approx": _gelu,
    "leaky-relu-slope": _leaky,
    "layernorm-epsilon": _layernorm,
    "conv-layout": _conv,
    "same-padding-conv": _conv,
    "flatten-order": _flatten,
    "same-padding-pool": _pool,
    "avgpool-count-pad": _pool,
    "dropout-keep-prob": _dropout,
    "dropout-eval-mode": _dropout,
    "conv-padding": _conv,
    "dropout-kind": _spatial_dropout,
    "dropout-site-missing": _two_dropouts,
}


class LayersPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        arrays = self.case.data.args["arrays"]
        self.placeholders = {
            k: tf1.placeholder(dt, [None] + list(spec.get("shape", (0, spec.get("classes", 0)))[1:]), name=k)
            for k, spec in arrays.items()
        }
        zeros = tf1.zeros_initializer()
        self.variables = {n: tf1.get_variable(n, shape=s.shape, initializer=zeros, dtype=dt) for n, s in self.case.params.items()}
        fwd = SCENARIOS[o["scenario"]](tf, self.variables, self.placeholders, o)
        out = fwd["out"]
        T = self.placeholders.get("T")
        loss = tf.reduce_mean(tf.square(out - T if T is not None else out))
        lr = tf.constant(o.get("lr", 0.125), dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        names = list(self.variables)
        gv = opt.compute_gradients(loss, [self.variables[n] for n in names])
        self.before = {
            "forward": fwd,
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(self.variables)}

    def settings(self) -> dict:
        return _settings(dict(self.case.options), "tf")


def _settings(o: dict, convention: str) -> dict:
    out = {"framework_convention": convention}
    if "keep_prob" in o:
        out["dropout"] = {"argument": "keep_prob", "value": o["keep_prob"]}
        out["dropout_kind"] = "channel" if o["scenario"] == "dropout-kind" else "element"
        out["dropout_sites"] = 2 if o["scenario"] == "dropout-site-missing" else 1
    if o["scenario"] == "layernorm-epsilon":
        out["layernorm_epsilon"] = o["epsilon"]
    if o["scenario"] == "gelu-approx":
        out["gelu"] = "exact"
    if o["scenario"] == "leaky-relu-slope":
        out["leaky_relu_slope"] = o["alpha"]
    return out


def build(case, dtype, variant=None):
    """Build the TF1 layer-pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 layer pitfall port")
    return LayersPort(case, dtype, variant)
