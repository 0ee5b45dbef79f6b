"""Optimizer and training-loop pitfalls, TF1 reference: a two-layer linear net trained by tf.train.

``y = (X @ W1) @ W2``, loss ``loss_scale * mean((y - T)^2)``; the optimizer, learning-rate
schedule, clipping, max-norm constraint and ``var_list`` come from the case's options:

* ``optimizer``: ``sgd`` | ``momentum`` (``momentum``, ``nesterov``) | ``adam`` (``beta1``,
  ``beta2``, ``epsilon``) | ``rmsprop`` (``decay``, ``epsilon``, ``centered``) | ``adagrad``
  (``initial_accumulator``) | ``adadelta`` (``rho``, ``epsilon``);
* ``schedule``: ``{"kind": "polynomial", "decay_steps", "end", "power"}`` evaluated at
  ``global_step``, which ``apply_gradients`` increments after the update;
* ``clip``: ``{"kind": "global", "norm": c}`` (``tf.clip_by_global_norm``);
* ``max_norm``: ``{"param": name, "radius": r}``: ``clip_by_norm(w, r, axes=[0])`` after
  the update (Keras ``MaxNorm(axis=0)`` on a Dense kernel);
* ``var_list``: the names the optimizer trains.
"""

from __future__ import annotations

from .._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "OptimPort", "SLOTS"]

#: The slots each optimizer reports, under TF1's slot names (the canonical names).
SLOTS = {"sgd": (), "momentum": ("momentum",), "adam": ("m", "v"), "rmsprop": ("rms",), "adagrad": ("accumulator",),
         "adadelta": ("accum", "accum_update")}


def _optimizer(tf1, o: dict, lr):
    kind = o.get("optimizer", "sgd")
    if kind == "sgd":
        return tf1.train.GradientDescentOptimizer(lr)
    if kind == "momentum":
        return tf1.train.MomentumOptimizer(lr, o["momentum"], use_nesterov=bool(o.get("nesterov", False)))
    if kind == "adam":
        return tf1.train.AdamOptimizer(lr, o.get("beta1", 0.9), o.get("beta2", 0.999), o.get("epsilon", 1e-8))
    if kind == "rmsprop":
        return tf1.train.RMSPropOptimizer(lr, decay=o.get("decay", 0.9), epsilon=o.get("epsilon", 1e-10), centered=bool(o.get("centered", False)))
    if kind == "adagrad":
        return tf1.train.AdagradOptimizer(lr, initial_accumulator_value=o.get("initial_accumulator", 0.1))
    if kind == "adadelta":
        return tf1.train.AdadeltaOptimizer(lr, rho=o.get("rho", 0.95), epsilon=o.get("epsilon", 1e-8))
    raise ValueError(f"unknown optimizer {kind!r}")


class OptimPort(GraphPort):
    def define(self, tf, tf1):
        o, dt = dict(self.case.options), tf_dtype(self.dtype)
        X = tf1.placeholder(dt, [None, None], name="X")
        T = tf1.placeholder(dt, [None, 1], name="T")
        self.placeholders = {"X": X, "T": T}
        init = tf1.zeros_initializer()  # load() sets the harness's values
        W1 = tf1.get_variable("W1", shape=self.case.params["W1"].shape, initializer=init, dtype=dt)
        W2 = tf1.get_variable("W2", shape=self.case.params["W2"].shape, initializer=init, dtype=dt)
        self.variables = {"W1": W1, "W2": W2}
        y = tf.matmul(tf.matmul(X, W1), W2)
        loss = o.get("loss_scale", 1.0) * tf.reduce_mean(tf.square(y - T))
        gs = tf1.Variable(0, trainable=False, dtype=tf.int64, name="global_step")
        sched = o.get("schedule")
        if sched:
            lr = tf1.train.polynomial_decay(
                tf.constant(o["lr"], dt), gs, sched["decay_steps"], end_learning_rate=sched["end"], power=sched.get("power", 1.0)
            )
        else:
            lr = tf.constant(o["lr"], dt)
        opt = _optimizer(tf1, o, lr)
        names = list(o.get("var_list", ("W1", "W2")))
        gv = opt.compute_gradients(loss, [self.variables[n] for n in names])
        self.before = {
            "forward": {"y": y},
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, gv)},
            "learning_rate": {"lr": lr},
        }
        clip = o.get("clip")
        if clip:
            clipped, _ = tf.clip_by_global_norm([g for g, _ in gv], clip["norm"])
            gv = list(zip(clipped, [v for _, v in gv]))
            self.before["processed_gradients"] = {n: g for n, g in zip(names, clipped)}
        self.train_ops = [opt.apply_gradients(gv, global_step=gs)]
        self.after = {"parameters": dict(self.variables)}
        slots = {f"{s}/{n}": opt.get_slot(self.variables[n], s) for n in names for s in SLOTS[o.get("optimizer", "sgd")]}
        if slots:
            self.after["slots"] = slots
        self.constrain = None
        mn = o.get("max_norm")
        if mn:
            w = self.variables[mn["param"]]
            self.constrain = (w.assign(tf.clip_by_norm(w, mn["radius"], axes=[0])), {mn["param"]: w})

    def _step(self, batch):
        # The constraint runs after the update (Keras/TF1 optimizers apply constraints after
        # the gradients): fetch the parameters between the two, the constrained ones after.
        out = super()._step(batch)
        if self.constrain is not None:
            op, fetch = self.constrain
            self.session.run(op)
            out["constrained"] = self.session.run(fetch)
        return out

    def settings(self) -> dict:
        return _settings(dict(self.case.options))


def _settings(o: dict) -> dict:
    kind = o.get("optimizer", "sgd")
    out = {"framework_convention": "tf", "optimizer": kind}
    if kind == "adam":
        out.update(adam_epsilon=o.get("epsilon", 1e-8), adam_epsilon_form="hat")
    if kind == "momentum":
        out.update(momentum=o["momentum"], nesterov=bool(o.get("nesterov", False)), dampening=0.0)
    if kind == "adam":
        out["adam_betas"] = (o.get("beta1", 0.9), o.get("beta2", 0.999))
    if kind == "rmsprop":
        out.update(rmsprop_decay=o.get("decay", 0.9), rmsprop_initial=1.0, rmsprop_centered=bool(o.get("centered", False)),
                   rmsprop_epsilon=o.get("epsilon", 1e-10), rmsprop_epsilon_form="inside sqrt")
    if kind == "adadelta":
        out.update(adadelta_rho=o.get("rho", 0.95), adadelta_epsilon=o.get("epsilon", 1e-8))
    if kind == "adagrad":
        out.update(initial_accumulator=o.get("initial_accumulator", 0.1))
    out["coupled_weight_decay"] = 0.0
    if o.get("clip"):
        out["clip"] = {"kind": "global", "value": o["clip"]["norm"]}
    if o.get("max_norm"):
        out["max_norm"] = {"api": "tf.clip_by_norm", "axis": 0, "radius": o["max_norm"]["radius"], "when": "after update"}
    return out


def build(case, dtype, variant=None):
    """Build the TF1 optimizer-pitfall port of ``case`` in ``dtype``."""
    if variant is not None:
        raise ValueError(f"unknown variant {variant!r} of the TF1 optimizer pitfall port")
    return OptimPort(case, dtype, variant)
