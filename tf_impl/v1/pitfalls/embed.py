"""Embedding pitfalls, TF1 reference: ``embedding_lookup`` of a trained table, mean over the sequence, a Dense head.

``y = mean_t(E[ids[:, t]]) @ W``, loss ``mean((y - T)^2)``, ``GradientDescentOptimizer``. ``E``'s gradient is
an ``IndexedSlices`` (one row per looked-up id, repeated ids repeated); it is recorded densified. With
``options["clip"]``, ``tf.clip_by_global_norm`` clips [E's IndexedSlices, W's gradient]: its global norm sums
the squares of the slices' values, a repeated id counted once per occurrence (not the dense row's square).
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "EmbedPort"]


class EmbedPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        shape = self.case.data.args["arrays"]["ids"]["shape"]
        ids = tf1.placeholder(dt, [None, shape[1]], name="ids")  # integer ids, fed as floats
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"ids": ids, "T": T}
        zeros = tf1.zeros_initializer()
        self.variables = {n: tf1.get_variable(n, shape=s.shape, initializer=zeros, dtype=dt) for n, s in self.case.params.items()}
        rows = tf.nn.embedding_lookup(self.variables["E"], tf.cast(ids, tf.int32))
        pooled = tf.reduce_mean(rows, axis=1)
        y = tf.matmul(pooled, self.variables["W"])
        loss = tf.reduce_mean(tf.square(y - T))
        lr = tf.constant(o["lr"], dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        names = list(self.variables)
        gv = opt.compute_gradients(loss, [self.variables[n] for n in names])
        self.before = {
            "forward": {"pooled": pooled, "y": y},
            "loss": {"loss": loss},
            "gradients": {n: tf.convert_to_tensor(g) for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        if o.get("clip"):
            clipped, _ = tf.clip_by_global_norm([g for g, _ in gv], o["clip"])
            gv = list(zip(clipped, [v for _, v in gv]))
            self.before["processed_gradients"] = {n: tf.convert_to_tensor(g) for n, g in zip(names, clipped)}
        self.train_ops = [opt.apply_gradients(gv)]
        self.after = {"parameters": dict(self.variables)}

    def settings(self) -> dict:
        o = dict(self.case.options)
        out = {"framework_convention": "tf", "optimizer": "sgd", "padding_idx": None}
        if o.get("clip"):
            out["clip"] = {"kind": "global", "value": o["clip"]}
            out["clip_norm_rows"] = "per occurrence (IndexedSlices)"
        return out


def build(case, dtype, variant=None):
    """Build the TF1 embedding-pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 embedding pitfall port")
    return EmbedPort(case, dtype, variant)
