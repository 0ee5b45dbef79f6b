"""The dense module in TF1 graph code, with graphs cached by structure.

One graph (and Session) is built per *structure*: dtype, widths, activation, loss and
reduction, optimizer kind (and Nesterov), schedule kind, clip kind, max-norm axis,
and the form of the update. Every number that does not change the graph's shape -- learning rate and
schedule parameters, momentum, betas, epsilon, decay, clip limit, max-norm radius, the
data -- is fed through a placeholder, and ``load()`` re-initialises the weights, the
optimizer slots and ``global_step``. A property drawing hundreds of configs therefore
builds a handful of graphs (building one costs ~0.3 s of CPU; a load or a step is one
session.run, ~1 ms).

The training step is written as TF1 code was: ``compute_gradients`` -> clipping ->
``apply_gradients(global_step=...)`` with a schedule driven by ``global_step``, then the
max-norm constraint ``tf.clip_by_norm(kernel, r, axes=[axis])`` assigned back.

An equivalent form, :class:`Minimize` (``opt.minimize(loss, global_step)``; configs
without clipping), is in :data:`ALTERNATIVES`.
"""

from __future__ import annotations

from collections import OrderedDict

from typing import Mapping

import numpy as np

from parity.strategies import normalize_config, structure_of
from parity.portkit.variants import build_variant
from tf_impl import cached, tensorflow
from tf_impl.v1._graph import framework_info, tf_dtype

__all__ = ["build", "framework_info", "DensePort", "structure", "clear_cache", "SLOT_NAMES", "ALTERNATIVES"]

#: optimizer -> TF1 slot names reported as ``{param}/{slot}``
SLOT_NAMES = {"sgd": (), "momentum": ("momentum",), "adam": ("m", "v"), "rmsprop": ("rms",), "adagrad": ("accumulator",)}

#: Most structures kept built (:func:`tf_impl.cached`: least recently used dropped); the ci
#: profile's covering structures all fit.
CACHE_SIZE = 32
_CACHE: "OrderedDict[tuple, _DenseGraph]" = OrderedDict()


def _cached(key: tuple, make) -> "_DenseGraph":
    return cached(_CACHE, key, make, CACHE_SIZE)


def structure(cfg: Mapping, dtype: str, form: str = "apply_gradients") -> tuple:
    """Return the cache key: everything that changes the graph, nothing that is fed."""
    return (dtype, tuple(structure_of(cfg).items()), form)


def clear_cache() -> None:
    """Close every cached Session and forget the graphs."""
    for g in _CACHE.values():
        g.session.close()
    _CACHE.clear()


class _DenseGraph:
    """One built graph and its Session; the hyper-parameters are placeholders."""

    #: an open port runs this Session (its variables are that port's): another one builds its own
    held = False

    def __init__(self, cfg, dtype: str):
        tf = tensorflow()
        tf1 = tf.compat.v1
        self.dtype = dtype
        dt = tf_dtype(dtype)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._define(tf, tf1, dt, cfg)
            self.graph.finalize()
        config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        self.session = tf1.Session(graph=self.graph, config=config)

    def _define(self, tf, tf1, dt, cfg):
        # The helpers run in this order, which is the order the graph's ops are created in
        # (op names and the random streams depend on it): do not reorder them.
        ph = lambda name: tf1.placeholder(dt, shape=[], name=name)  # noqa: E731
        self.hyper: dict[str, object] = {}
        h, forward = self._layers(tf, tf1, dt, cfg)
        loss = self._loss(tf, cfg, h)
        self.global_step = tf1.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        lr = self._schedule(tf1, cfg["schedule"], ph)
        name = cfg["optimizer"]["name"]
        opt = self._optimizer(tf1, cfg["optimizer"], lr, ph)

        names = list(self.variables)
        var_list = [self.variables[n] for n in names]
        grads_and_vars = opt.compute_gradients(loss, var_list)
        before = {
            "forward": forward,
            "loss": {"loss": loss},
            "gradients": {n: g for n, (g, _) in zip(names, grads_and_vars)},
            "learning_rate": {"lr": lr},
        }
        if cfg["clip"] is not None:
            grads_and_vars = self._clip(tf, cfg["clip"], grads_and_vars, names, var_list, before, ph)
        fetched = [t for stage in before.values() for t in stage.values()]
        # The train op waits for every value fetched with it, so one session.run returns
        # the values from before the update.
        with tf.control_dependencies(fetched):
            train = self._train_op(opt, loss, grads_and_vars, var_list)
        self.before, self.train = before, train

        slots = {}
        for n, v in zip(names, var_list):
            for s in SLOT_NAMES[name]:
                slots[f"{n}/{s}"] = opt.get_slot(v, s)
        self._after_step(tf, train, slots, cfg["max_norm"], ph)
        self._load(tf, tf1, dt, opt, name, slots)

    def _layers(self, tf, tf1, dt, cfg):
        """The placeholders ``x`` and ``y``, the dense layers' variables and outputs: ``(logits, forward)``."""
        widths = cfg["widths"]
        depth = len(widths) - 1
        self.x = tf1.placeholder(dt, [None, widths[0]], name="x")
        self.y = tf1.placeholder(dt, [None, widths[-1]], name="y")
        act = {"linear": tf.identity, "relu": tf.nn.relu, "tanh": tf.nn.tanh, "sigmoid": tf.nn.sigmoid}[cfg["activation"]]
        self.variables: dict[str, object] = {}
        zeros = tf1.zeros_initializer(dtype=dt)  # load() overwrites every weight
        h, forward = self.x, {}
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            W = tf1.get_variable(f"dense{i}/kernel", [n_in, n_out], dt, initializer=zeros)
            b = tf1.get_variable(f"dense{i}/bias", [n_out], dt, initializer=zeros)
            self.variables[W.op.name] = W
            self.variables[b.op.name] = b
            h = tf.matmul(h, W) + b
            if i < depth - 1:
                h = act(h)
            forward[f"dense{i}"] = h
        return h, forward

    def _loss(self, tf, cfg, h):
        reduce = tf.reduce_mean if cfg["reduction"] == "mean" else tf.reduce_sum
        if cfg["loss"] == "mse":
            return reduce(tf.square(h - self.y))
        return reduce(tf.nn.softmax_cross_entropy_with_logits(labels=self.y, logits=h))

    def _schedule(self, tf1, sched, ph):
        """The learning rate: the fed ``lr``, decayed by ``global_step`` as the schedule says."""
        lr = self.hyper["lr"] = ph("lr")
        if sched["kind"] == "polynomial":
            for k in ("decay_steps", "end", "power"):
                self.hyper[k] = ph(k)
            lr = tf1.train.polynomial_decay(
                lr, self.global_step, self.hyper["decay_steps"], self.hyper["end"], power=self.hyper["power"]
            )
        elif sched["kind"] == "exponential":
            for k in ("decay_steps", "rate"):
                self.hyper[k] = ph(k)
            lr = tf1.train.exponential_decay(
                lr, self.global_step, self.hyper["decay_steps"], self.hyper["rate"], staircase=sched["staircase"]
            )
        return lr

    def _optimizer(self, tf1, opt_cfg, lr, ph):
        """The TF1 optimizer, its hyper-parameters fed (placeholders in :attr:`hyper`)."""
        name = opt_cfg["name"]
        for k in {"momentum": ("momentum",), "adam": ("beta1", "beta2", "epsilon"), "rmsprop": ("decay", "epsilon"), "adagrad": ("initial_accumulator",)}.get(name, ()):
            self.hyper[k] = ph(k)
        H = self.hyper
        if name == "sgd":
            return tf1.train.GradientDescentOptimizer(lr)
        if name == "momentum":
            return tf1.train.MomentumOptimizer(lr, H["momentum"], use_nesterov=opt_cfg["nesterov"])
        if name == "adam":
            return tf1.train.AdamOptimizer(lr, H["beta1"], H["beta2"], H["epsilon"])
        if name == "rmsprop":
            return tf1.train.RMSPropOptimizer(lr, decay=H["decay"], momentum=0.0, epsilon=H["epsilon"])
        # the initial value is a Python float at construction; load() assigns the fed one
        return tf1.train.AdagradOptimizer(lr, initial_accumulator_value=0.1)

    def _clip(self, tf, clip, grads_and_vars, names, var_list, before, ph):
        """The clipped ``grads_and_vars`` (limit fed as ``clip``); ``before`` gets the processed gradients."""
        c = self.hyper["clip"] = ph("clip")
        grads = [g for g, _ in grads_and_vars]
        if clip["kind"] == "value":
            grads = [tf.clip_by_value(g, -c, c) for g in grads]
        elif clip["kind"] == "norm":
            grads = [tf.clip_by_norm(g, c) for g in grads]
        else:
            grads, _ = tf.clip_by_global_norm(grads, c)
        before["processed_gradients"] = dict(zip(names, grads))
        return list(zip(grads, var_list))

    def _after_step(self, tf, train, slots, mn, ph):
        """:attr:`after`: the parameters and slots read after ``train``, then the max-norm constraint."""
        # Everything below is ordered by control dependencies, so that one session.run
        # does a whole step (and one a whole load): a Session call costs more than this
        # graph's arithmetic, and a property runs thousands of them.
        with tf.control_dependencies([train]):
            self.after = {"parameters": {n: v.read_value() for n, v in self.variables.items()}}
            if slots:
                self.after["slots"] = {k: v.read_value() for k, v in slots.items()}
        if mn is not None:
            r = self.hyper["radius"] = ph("radius")
            kernels = {n: v for n, v in self.variables.items() if n.endswith("/kernel")}
            with tf.control_dependencies([t for stage in self.after.values() for t in stage.values()]):
                constrain = tf.group(
                    *[v.assign(tf.clip_by_norm(v.read_value(), r, axes=[mn["axis"]])) for v in kernels.values()]
                )
            with tf.control_dependencies([constrain]):
                self.after["constrained"] = {n: v.read_value() for n, v in kernels.items()}

    def _load(self, tf, tf1, dt, opt, name, slots):
        """:attr:`load_in` and :attr:`loaded`: one run loads the weights and resets the optimizer."""
        # load: the weights, then the optimizer's variables (slots, Adam's beta powers) and
        # global_step back to their initial values (Adagrad's accumulator to the fed one),
        # then the parameters read back.
        self.load_in = {n: tf1.placeholder(dt, v.shape, name=f"load_{i}") for i, (n, v) in enumerate(self.variables.items())}
        weights = tf.group(*[v.assign(self.load_in[n]) for n, v in self.variables.items()])
        with tf.control_dependencies([weights]):
            resets = []
            for v in opt.variables() + [self.global_step]:
                if name == "adagrad" and any(v is a for a in slots.values()):
                    resets.append(v.assign(tf.fill(tf.shape(v), self.hyper["initial_accumulator"])))
                else:
                    resets.append(v.assign(v.initial_value))
            reset = tf.group(*resets)
        with tf.control_dependencies([reset]):
            self.loaded = {n: v.read_value() for n, v in self.variables.items()}

    def _train_op(self, opt, loss, grads_and_vars, var_list):
        return opt.apply_gradients(grads_and_vars, global_step=self.global_step)

    def feed_hyper(self, cfg) -> dict:
        opt, sched = cfg["optimizer"], cfg["schedule"]
        values = {**opt, **sched}
        if cfg["clip"] is not None:
            values["clip"] = cfg["clip"]["limit"]
        if cfg["max_norm"] is not None:
            values["radius"] = cfg["max_norm"]["radius"]
        return {p: values[k] for k, p in self.hyper.items()}


class DensePort:
    """A handle on a cached graph: the port protocol for one case."""

    graph = _DenseGraph
    form = "apply_gradients"

    def __init__(self, case, dtype: str):
        self.cfg = normalize_config(case.options)
        key = structure(self.cfg, dtype, self.form)
        self.g = _cached(key, lambda: self.graph(self.cfg, dtype))
        self._own = self.g.held  # another open port holds the cached Session (the conditioning run beside the
        if self._own:            # reference runs the same graph in float64): a graph and Session of its own
            self.g = self.graph(self.cfg, dtype)
        self.g.held = True
        self.hyper = self.g.feed_hyper(self.cfg)
        self._params = None  # read back by load() and step(): the Session holds several cases' weights in turn

    def parameters(self) -> dict[str, np.ndarray]:
        if self._params is None:
            raise RuntimeError("parameters() before load(): the cached graph holds another case's weights")
        return dict(self._params)

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        g = self.g
        feed = dict(self.hyper)
        feed.update({g.load_in[n]: np.asarray(params[n]) for n in g.load_in})
        self._params = g.session.run(g.loaded, feed)

    def step(self, batch: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        g = self.g
        feed = dict(self.hyper)
        feed[g.x] = batch["x"]
        feed[g.y] = batch["y"]
        before, after, _ = g.session.run([g.before, g.after, g.train], feed)
        before.update(after)
        self._params = after["parameters"]
        if "constrained" in after:
            self._params = {**self._params, **after["constrained"]}
        return before

    def close(self) -> None:
        """Release the handle; the cached graph and Session stay for the next case (a port's own: closed)."""
        self.g.held = False
        if self._own:
            self.g.session.close()


class _MinimizeGraph(_DenseGraph):
    def _define(self, tf, tf1, dt, cfg):
        if cfg["clip"] is not None:
            raise ValueError("minimize() applies the raw gradients: it cannot clip (configs without clip only)")
        super()._define(tf, tf1, dt, cfg)

    def _train_op(self, opt, loss, grads_and_vars, var_list):
        return opt.minimize(loss, global_step=self.global_step, var_list=var_list)


class Minimize(DensePort):
    """``opt.minimize(loss, global_step)``: compute + apply in one call (configs without clipping)."""

    graph = _MinimizeGraph
    form = "minimize"


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize}


def build(case, dtype, variant=None):
    """Build (or reuse) the TF1 dense port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return DensePort(case, dtype)
