"""LSTM pitfalls, TF1 reference: ``tf.compat.v1.nn.rnn_cell.LSTMCell``'s computation, unrolled.

TF 2.21 with Keras 3 refuses ``rnn_cell.LSTMCell`` ("not available with Keras 3"), so its
step is written out as ``tf_keras/src/layers/rnn/legacy_cells.py`` defines it: one kernel
``[in + units, 4 units]`` over ``concat([x, h])``, gate order **i, j, f, o**, and
``forget_bias`` (1.0) added to ``f`` at run time, not stored in the bias::

    i, j, f, o = split(concat([x, h]) @ kernel + bias, 4)
    c = c * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j);  h = sigmoid(o) * tanh(c)
"""

from __future__ import annotations

import numpy as np

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "LSTMPort"]


class LSTMPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        b, steps, n_in = self.case.data.args["arrays"]["X"]["shape"]
        X = tf1.placeholder(dt, [None, steps, n_in], name="X")
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"X": X, "T": T}
        zeros = tf1.zeros_initializer()
        v = self.variables = {n: tf1.get_variable(n, shape=s.shape, initializer=zeros, dtype=dt) for n, s in self.case.params.items()}
        units = self.case.params["K2"].shape[0]
        h = tf.zeros([tf.shape(X)[0], units], dt)
        c = tf.zeros_like(h)
        outs, forget = [], []
        for k in range(steps):
            gates = tf.matmul(tf.concat([X[:, k], h], axis=1), v["kernel"]) + v["bias"]
            i, j, f, og = tf.split(gates, 4, axis=1)
            forget.append(tf.sigmoid(f + o["forget_bias"]))
            c = c * forget[-1] + tf.sigmoid(i) * tf.tanh(j)
            h = tf.sigmoid(og) * tf.tanh(c)
            outs.append(h)
        hs = tf.stack(outs, axis=1)
        out = tf.matmul(h, v["K2"])
        loss = tf.reduce_mean(tf.square(out - T))
        lr = tf.constant(o["lr"], dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        names = list(v)
        gv = opt.compute_gradients(loss, [v[n] for n in names])
        self.before = {
            # option cell="hand" (the port writes the cell out): the first time step's forget gate is compared too
            "forward": ({"f_t0": forget[0]} if o.get("cell") == "hand" else {}) | {"h": hs, "out": out},
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(v)}
        if o.get("bias_hh") == "trained":  # the port reports torch's second bias; TF has none: zero, never trained
            self.after["parameters"]["bias_hh"] = tf.zeros([4 * units], dt)

    def parameters(self):
        out = super().parameters()
        if self.case.option("bias_hh") == "trained":
            out["bias_hh"] = np.zeros(4 * self.case.params["K2"].shape[0], dtype=self.dtype)
        return out

    def settings(self) -> dict:
        return {"framework_convention": "tf", "lstm_gate_order": "i,j,f,o", "lstm_forget_bias": self.case.option("forget_bias"),
                "lstm_bias_hh": "zero"}


def build(case, dtype, variant=None):
    """Build the TF1 LSTM pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 LSTM pitfall port")
    return LSTMPort(case, dtype, variant)
