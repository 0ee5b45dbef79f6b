"""GRU pitfall, TF1 reference: ``tf.compat.v1.nn.rnn_cell.GRUCell``'s computation, unrolled.

As for the LSTM (``rnn.py``), TF 2.21 with Keras 3 refuses the legacy cell, so its step is
written out as ``tf_keras/src/layers/rnn/legacy_cells.py`` defines it: the reset gate
multiplies the state *before* the candidate's matmul ("reset_after=False")::

    r, u = split(sigmoid(concat([x, h]) @ gates_kernel + gates_bias), 2)
    c = tanh(concat([x, r * h]) @ candidate_kernel + candidate_bias);  h = u * h + (1 - u) * c
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "GRUPort"]


class GRUPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        _, steps, n_in = self.case.data.args["arrays"]["X"]["shape"]
        X = tf1.placeholder(dt, [None, steps, n_in], name="X")
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"X": X, "T": T}
        zeros = tf1.zeros_initializer()
        v = self.variables = {n: tf1.get_variable(n, shape=s.shape, initializer=zeros, dtype=dt) for n, s in self.case.params.items()}
        units = self.case.params["K2"].shape[0]
        h = tf.zeros([tf.shape(X)[0], units], dt)
        outs = []
        for k in range(steps):
            value = tf.sigmoid(tf.matmul(tf.concat([X[:, k], h], axis=1), v["gates_kernel"]) + v["gates_bias"])
            r, u = tf.split(value, 2, axis=1)
            c = tf.tanh(tf.matmul(tf.concat([X[:, k], r * h], axis=1), v["candidate_kernel"]) + v["candidate_bias"])
            h = u * h + (1 - u) * c
            outs.append(h)
        out = tf.matmul(h, v["K2"])
        loss = tf.reduce_mean(tf.square(out - T))
        lr = tf.constant(o["lr"], dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        names = list(v)
        gv = opt.compute_gradients(loss, [v[n] for n in names])
        self.before = {
            "forward": {"h": tf.stack(outs, axis=1), "out": out},
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(v)}

    def settings(self) -> dict:
        return {"framework_convention": "tf", "gru_reset": "before the candidate matmul (TF1 GRUCell, Keras reset_after=False)"}


def build(case, dtype, variant=None):
    """Build the TF1 GRU pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 GRU pitfall port")
    return GRUPort(case, dtype, variant)
