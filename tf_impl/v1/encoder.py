"""Seed 000: the 1-16-1 / 1-16-16-1 "identity encoder", in TF1 graph code as the seed wrote it.

The loss looks at element [0, 0] only (``estimate0 = 2 * O2[0, 0]``); plain gradient
descent; gradients clipped by value through ``compute_gradients`` / ``apply_gradients``.

An equivalent formulation, :class:`Minimize` (``opt.minimize``, no clipping: equal to
compute + apply only where the clip does not bite), is in :data:`ALTERNATIVES`.
"""

from __future__ import annotations

from parity.cases.catalog.seed000 import layer_names
from parity.trace.health import summary_dir

from parity.portkit.variants import build_variant
from tf_impl.v1._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "EncoderPort", "ALTERNATIVES"]


class EncoderPort(GraphPort):
    def define(self, tf, tf1):
        case, dt = self.case, tf_dtype(self.dtype)
        hidden = tuple(case.option("hidden", (16,)))
        init = tf1.random_normal_initializer(0, 1e-3)  # the seed's; overwritten by load()
        names = layer_names(len(hidden))
        I = tf1.placeholder(dt, shape=[None, 1], name="I")
        self.placeholders = {"I": I}
        x, width, acts = I, 1, {}
        for (wname, bname, oname), units in zip(names, hidden + (1,)):
            W = tf1.get_variable(wname, shape=[width, units], initializer=init, dtype=dt)
            b = tf1.get_variable(bname, shape=[units], initializer=init, dtype=dt)
            self.variables[wname], self.variables[bname] = W, b
            z = tf.matmul(x, W) + b
            x = z if oname == "O2" else tf.nn.relu(z, name=oname)
            acts[oname] = x
            width = units
        O2_0 = tf.gather_nd(acts["O2"], [[0, 0]])
        estimate0 = 2.0 * O2_0
        eval_inp = tf.gather_nd(I, [[0, 0]])
        distance = tf.reduce_sum(tf.square(eval_inp - estimate0))
        lr = tf.constant(case.option("lr", 1e-3), dtype=dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        var_list = list(self.variables.values())
        order = list(self.variables)
        grads_and_vars = opt.compute_gradients(distance, var_list)
        self.before = {
            "forward": acts,
            "loss": {"loss": distance},
            "gradients": {n: g for n, (g, _) in zip(order, grads_and_vars)},
            "learning_rate": {"lr": lr},
        }
        self.train_ops = [self._train_op(tf, opt, distance, grads_and_vars)]
        self.after = {"parameters": dict(self.variables)}
        self.summary_dir = summary_dir(case, "tf1", self.dtype)
        if self.summary_dir:
            # The seed answer's TensorBoard histograms of every variable and its gradient,
            # built once here (not inside the loop) and written every step.
            for name, (g, v) in zip(order, grads_and_vars):
                tf1.summary.histogram(name, v)
                tf1.summary.histogram(name + "_grad", g)
            self.merged = tf1.summary.merge_all()

    def _train_op(self, tf, opt, loss, grads_and_vars):
        """Clip each gradient by value, then apply: the seed's compute / clip / apply."""
        c = self.case.option("clip_value", 4.5)
        clipped = [(tf.clip_by_value(g, -c, c), v) for g, v in grads_and_vars]
        self.before["processed_gradients"] = {n: g for n, (g, _) in zip(self.variables, clipped)}
        return opt.apply_gradients(clipped)

    def _step(self, batch):
        out = super()._step(batch)
        if self.summary_dir:
            if not hasattr(self, "writer"):
                with self.graph.as_default():
                    self.writer = self.tf1.summary.FileWriter(self.summary_dir, self.graph)
                self.count = 0
            # the histograms of the variables after this step's update, and of this step's gradients
            self.writer.add_summary(self.session.run(self.merged, self.feed(batch)), self.count)
            self.count += 1
        return out

    def close(self):
        if getattr(self, "writer", None):
            self.writer.close()
        super().close()

class Minimize(EncoderPort):
    """``opt.minimize(loss)``: no clipping (equal to compute + apply where the clip does not bite)."""

    def _train_op(self, tf, opt, loss, grads_and_vars):
        return opt.minimize(loss, var_list=[v for _, v in grads_and_vars])


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize}


def build(case, dtype, variant=None):
    """Build the TF1 encoder port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return EncoderPort(case, dtype)
