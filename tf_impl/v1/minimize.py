"""Seed 004 in TF1: what ``minimize()`` trains, and how to choose what it trains.

Cases (``case.options["kind"]``):

* ``oscillate``: loss ``(y - w*x)^2``; with x=1, y=3, w=2, lr=1, w goes 2, 4, 2, 4.
* ``sum``: ``y = w1*x + w2*x + w3*x`` with ``w3`` a ``tf.constant``: never trained.
* ``constants``: nothing is a variable: ``minimize`` refuses ("No variables to optimize").

The port: ``compute_gradients(var_list)`` + ``apply_gradients``. Two equivalent forms the
seed discusses are in :data:`ALTERNATIVES`: :class:`Minimize` (``opt.minimize``) and
:class:`TrainableFalse` (frozen variables made with ``trainable=False``, ``var_list`` left
to its default, ``TRAINABLE_VARIABLES``).
Options ``global_step`` (counted by ``apply_gradients``, ``trainable=False``) and
``ema_decay`` (``ExponentialMovingAverage(decay, num_updates=global_step)`` applied
after each update to the trainable variables) add state.
"""

from __future__ import annotations

from parity.portkit.variants import build_variant
from tf_impl.v1._graph import GraphPort, framework_info, tf_dtype

__all__ = ["build", "framework_info", "MinimizePort", "ALTERNATIVES"]


class MinimizePort(GraphPort):
    def define(self, tf, tf1):
        case, dt = self.case, tf_dtype(self.dtype)
        kind = case.option("kind", "oscillate")
        x = tf1.placeholder(dt, shape=[], name="x")
        y = tf1.placeholder(dt, shape=[], name="y")
        self.placeholders = {"x": x, "y": y}
        for name, spec in case.params.items():
            self.variables[name] = tf1.get_variable(name, shape=spec.shape, dtype=dt,
                                                    trainable=self._in_trainable_collection(spec),
                                                    initializer=tf1.zeros_initializer())
        v = self.variables
        if kind == "oscillate":
            prediction = v["w"] * x
        elif kind == "sum":
            w3 = tf.constant(case.option("w3", 4.0), dtype=dt, name="w3")
            prediction = v["w1"] * x + v["w2"] * x + w3 * x
        elif kind == "constants":
            w = [tf.constant(c, dtype=dt) for c in case.option("constants", (4.0, 4.0, 4.0))]
            prediction = w[0] * x + w[1] * x + w[2] * x
        else:
            raise ValueError(f"unknown kind {kind!r}")
        loss = tf.square(y - prediction)
        lr = tf.constant(case.option("lr", 1.0), dtype=dt)
        opt = tf1.train.GradientDescentOptimizer(lr)
        trained = [v[n] for n in case.trainable]
        global_step = None
        if case.option("global_step", False):
            global_step = tf1.train.get_or_create_global_step()  # int64, trainable=False
        if kind == "constants":
            # Nothing is a variable: TF1 refuses here, "No variables to optimize".
            train, grads = opt.minimize(loss, var_list=trained, global_step=global_step), []
        else:
            train, grads = self._train_op(opt, loss, trained, global_step)
        self.before = {
            "forward": {"prediction": prediction},
            "loss": {"loss": loss},
            "gradients": dict(zip(case.trainable, grads)),
            "learning_rate": {"lr": lr},
        }
        self.after = {"parameters": dict(self.variables)}
        state = {}
        if global_step is not None:
            state["global_step"] = global_step
        decay = case.option("ema_decay")
        if decay is not None:
            ema = tf1.train.ExponentialMovingAverage(decay, num_updates=global_step)
            with tf.control_dependencies([train]):
                train = ema.apply(tf1.trainable_variables())
            for name, var in self.variables.items():
                shadow = ema.average(var)
                if shadow is not None:
                    state[f"{name}/ExponentialMovingAverage"] = shadow
                    self.extra_loads[name] = [shadow]  # a shadow starts at its variable's value
        if state:
            self.after["state"] = state
        self.train_ops = [train]

    def _in_trainable_collection(self, spec) -> bool:
        # Every parameter is an ordinary (trainable) variable: var_list picks what is trained.
        return True

    def _train_op(self, opt, loss, trained, global_step):
        """Return the train op and the gradients: ``compute_gradients(var_list)`` + ``apply_gradients``."""
        grads_and_vars = opt.compute_gradients(loss, var_list=trained)
        return opt.apply_gradients(grads_and_vars, global_step=global_step), [g for g, _ in grads_and_vars]


class Minimize(MinimizePort):
    """``opt.minimize(loss, var_list)``: the same update, built in one call."""

    def _train_op(self, opt, loss, trained, global_step):
        train = opt.minimize(loss, var_list=trained, global_step=global_step)
        return train, self.tf.gradients(loss, trained)


class TrainableFalse(MinimizePort):
    """Frozen parameters made with ``trainable=False``; ``var_list`` left to ``TRAINABLE_VARIABLES``."""

    def _in_trainable_collection(self, spec) -> bool:
        return spec.trainable

    def _train_op(self, opt, loss, trained, global_step):
        grads_and_vars = opt.compute_gradients(loss)
        return opt.apply_gradients(grads_and_vars, global_step=global_step), [g for g, _ in grads_and_vars]


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize, "trainable_false": TrainableFalse}


def build(case, dtype, variant=None):
    """Build the TF1 seed-004 port of ``case``; raises TF's own error when nothing can be trained."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return MinimizePort(case, dtype)
