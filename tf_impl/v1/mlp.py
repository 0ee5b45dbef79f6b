"""Seed 002 in TF1 graph code, as the seed wrote it: ``tf.layers.dense`` 784-300-100-10,
``tf.losses.softmax_cross_entropy``, clipping through ``compute_gradients`` /
``apply_gradients``, ``MomentumOptimizer`` on ``polynomial_decay`` driven by
``global_step``, a max-norm "regularizer" that collects ``assign(clip_by_norm(...))`` ops
run after every step, and a ``Saver``.

``tf.compat.v1.layers.dense`` raises in TF 2.21 when Keras 3 is installed (PITFALLS P04's
note); the same legacy layer lives in ``tf_keras.src.legacy_tf_layers.core.dense``
(identical variables ``<name>/kernel``, ``<name>/bias`` and regularizer handling), which is
what this port calls, inside its own ``tf.Graph``: no process isolation is needed.

Three details a float64 run exposes:

* ``tf.losses.softmax_cross_entropy`` casts the per-example losses to **float32** before
  reducing them (``losses_impl.compute_weighted_loss``) and the result back: in a float64
  graph the loss, and every gradient through it, carry float32 rounding (measured: loss
  1.2e-8, gradients 2e-8 relative vs the float64 oracle, at step 0). The port therefore
  writes the same reduction as ``tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(
  ...))``: identical in float32, exact in float64. ``tf_impl/v1/mistakes/mlp.py`` calls
  ``tf.losses.softmax_cross_entropy`` as the seed did (case
  ``seed002_tf1_losses_float32_cast`` shows the difference).

* ``polynomial_decay(0.01, ...)`` with a Python float computes the schedule in float32, and
  ``MomentumOptimizer(momentum=0.9)`` keeps 0.9 as a float32 tensor; both are cast to the
  variable's dtype in the update: a float64 run trains at ``float32(0.01)`` with momentum
  ``0.89999997615814`` (2.6e-8 relative: measured as a 1e-8 divergence of the parameters
  at step 1). The port passes rates, momentum and thresholds as tensors of the run's
  dtype.
* ``tf.contrib.layers.variance_scaling_initializer()`` is gone; its compat.v1 successor
  (``variance_scaling_initializer(2.0, "fan_in", "truncated_normal")``) draws with a
  slightly different stddev. Irrelevant here: the harness loads its own He-init draw.

:data:`ALTERNATIVES` ``resume``: after ``resume_at`` steps (default half the run) the port saves with
``tf.train.Saver``, closes its session, and a fresh port restored from the checkpoint
runs the rest (:func:`save` / :func:`restore`).
"""

from __future__ import annotations

import os

from parity.portkit.resume import ResumedPort
from parity.portkit.variants import build_variant
from tf_impl import tensorflow
from tf_impl.v1._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "save", "restore", "MlpPort", "ALTERNATIVES", "max_norm_regularizer"]

LAYERS = ("hidden1", "hidden2", "output")
MAX_NORM_COLLECTION = "max_norm"


def max_norm_regularizer(threshold=1.0, axes=1, name="max_norm", collection=MAX_NORM_COLLECTION):
    """Return a kernel "regularizer" that adds no loss but collects ``assign(clip_by_norm)`` ops.

    The seed's trick: ``tf.layers.dense`` calls the regularizer once with the kernel
    variable; the returned ``None`` adds no loss, and the assign op waits in
    ``collection`` to be run after each training step.
    """
    tf = tensorflow()

    def max_norm(weights):
        clipped = tf.clip_by_norm(weights, clip_norm=threshold, axes=axes)
        tf.compat.v1.add_to_collection(collection, tf.compat.v1.assign(weights, clipped, name=name))
        return None

    return max_norm


class MlpPort(GraphPort):
    def define(self, tf, tf1):
        from tf_keras.src.legacy_tf_layers.core import dense  # tf.compat.v1.layers.dense

        case, dt = self.case, tf_dtype(self.dtype)
        o = case.option
        self.procedure = o("procedure", "clip_value")
        if self.procedure not in ("clip_value", "global_norm", "max_norm"):
            raise ValueError(f"unknown procedure {self.procedure!r}")
        X = tf1.placeholder(dt, shape=(None, 784), name="X")
        y = tf1.placeholder(tf.int32, shape=(None), name="y")  # one-hot, int as in the seed
        self.placeholders = {"X": X, "y": y}
        he_init = tf1.variance_scaling_initializer(2.0, "fan_in", "truncated_normal")
        reg = None
        layers_constrained = tuple(o("max_norm_layers", ("hidden1", "hidden2")))
        if self.procedure == "max_norm":
            reg = max_norm_regularizer(tf.constant(o("max_norm", 1.0), dt), axes=o("max_norm_axes", 1))
        with tf.name_scope("dnn"):
            z1 = dense(X, 300, kernel_initializer=he_init, name="hidden1",
                       kernel_regularizer=reg if "hidden1" in layers_constrained else None)
            h1 = tf.nn.relu(z1)
            z2 = dense(h1, 100, kernel_initializer=he_init, name="hidden2",
                       kernel_regularizer=reg if "hidden2" in layers_constrained else None)
            h2 = tf.nn.relu(z2)
            logits = dense(h2, 10, kernel_initializer=he_init, name="output")
        by_name = {v.op.name: v for v in tf1.trainable_variables()}
        self.variables = {f"{layer}/{w}": by_name[f"{layer}/{w}"] for layer in LAYERS for w in ("kernel", "bias")}
        with tf.name_scope("loss"):
            loss = self._loss(tf, y, logits)
        names, var_list = list(self.variables), list(self.variables.values())
        self.before = {"forward": {"hidden1": h1, "hidden2": h2, "logits": logits}, "loss": {"loss": loss}}
        self.after = {"parameters": dict(self.variables)}
        with tf.name_scope("train"):
            if self.procedure == "max_norm":
                global_step = tf1.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
                self.learning_rate = tf1.train.polynomial_decay(
                    learning_rate=tf.constant(o("lr", 0.01), dt), global_step=global_step,
                    decay_steps=o("decay_steps"), end_learning_rate=tf.constant(o("end_lr", 0.001), dt),
                    power=tf.constant(o("power", 1.0), dt), cycle=False)
                opt = tf1.train.MomentumOptimizer(learning_rate=self.learning_rate,
                                                  momentum=tf.constant(o("momentum", 0.9), dt))
                # The trace's gradients: the same gradient graph minimize() builds inside.
                grads = [g for g, _ in opt.compute_gradients(loss, var_list)]
                self.before["gradients"] = dict(zip(names, grads))
                self.train_op = opt.minimize(loss=loss, var_list=var_list, global_step=global_step)
                self.after["slots"] = {f"{n}/momentum": opt.get_slot(v, "momentum") for n, v in self.variables.items()}
                self.after["state"] = {"global_step": global_step}
                self.constraint_ops = tf1.get_collection(MAX_NORM_COLLECTION)
                self.constrained = {f"{layer}/kernel": self.variables[f"{layer}/kernel"] for layer in layers_constrained}
            else:
                self.learning_rate = tf.constant(o("lr", 0.01), dt)
                opt = tf1.train.GradientDescentOptimizer(self.learning_rate)
                grads_and_vars = opt.compute_gradients(loss, var_list)
                self.before["gradients"] = {n: g for n, (g, _) in zip(names, grads_and_vars)}
                if self.procedure == "clip_value":
                    c = o("clip_value", 1.0)
                    capped = [(tf.clip_by_value(g, -c, c), v) for g, v in grads_and_vars]
                    self.before["processed_gradients"] = {n: g for n, (g, _) in zip(names, capped)}
                else:
                    clipped, norm = tf.clip_by_global_norm([g for g, _ in grads_and_vars],
                                                          tf.constant(o("clip_norm"), dt))
                    capped = list(zip(clipped, var_list))
                    self.before["processed_gradients"] = {**dict(zip(names, clipped)), "global_norm": norm}
                self.train_op = opt.apply_gradients(capped)
                self.constraint_ops, self.constrained = [], {}
        self.saver = tf1.train.Saver()

    def _loss(self, tf, y, logits):
        # tf.losses' reduction (SUM_BY_NONZERO_WEIGHTS, weights 1: sum / batch), without its
        # cast to float32 (see the module docstring).
        xentropy = tf.nn.softmax_cross_entropy_with_logits(labels=tf.cast(y, logits.dtype), logits=logits)
        return tf.reduce_mean(xentropy)

    def settings(self):
        o = self.case.option
        out = {"procedure": self.procedure, "lr": o("lr", 0.01)}
        if self.procedure == "max_norm":
            out.update(momentum=o("momentum", 0.9), decay_steps=o("decay_steps"), end_lr=o("end_lr", 0.001),
                       power=o("power", 1.0), max_norm=o("max_norm", 1.0), max_norm_axes=o("max_norm_axes", 1))
        return out

    def _step(self, batch):
        feed = self.feed(batch)
        run = self.session.run
        # One run fetches the stages before the update with the train op, as GraphPort._step does
        # (two runs computed the forward and backward passes twice): the update consumes what the
        # fetched values are computed from, so none of them sees an updated variable. As the seed,
        # the lr tensor is fetched in the same run as the train op; it is read before global_step
        # moves (the increment waits for the update).
        fetched = run({"before": self.before, "train": self.train_op, "lr": self.learning_rate}, feed)
        out = fetched["before"]
        out["learning_rate"] = {"lr": fetched["lr"]}
        out.update(run(self.after))
        if self.constraint_ops:
            run(self.constraint_ops)  # sess.run(clip_all_weights), a separate run
            out["constrained"] = run(self.constrained)
        return out


def save(port: MlpPort, directory: str) -> str:
    """Save every variable of the port (weights, momentum slots, global_step) with its ``Saver``."""
    with port.graph.as_default():  # a Saver runs its graph's ops, outside the eager default
        return port.saver.save(port.session, os.path.join(directory, "mlp.ckpt"))


def restore(case, dtype, path: str) -> MlpPort:
    """Return a fresh port of ``case`` (new graph and session) restored from ``path``."""
    port = MlpPort(case, dtype)
    with port.graph.as_default():
        port.saver.restore(port.session, path)
    return port


def resumed(case, dtype) -> ResumedPort:
    """The port, saved after ``resume_at`` steps and restored into a fresh one that runs the rest."""
    at = int(case.option("resume_at", case.steps // 2))
    return ResumedPort(case, dtype, lambda: MlpPort(case, dtype), save, restore, at)


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"resume": resumed}


def build(case, dtype, variant=None):
    """Build the TF1 MLP port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MlpPort(case, dtype)
