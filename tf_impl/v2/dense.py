"""The dense module in TF2: a tf.Module, GradientTape and one tf.function per structure.

The step is one ``tf.function`` traced once per *structure* (the same key as the TF1
port: dtype, widths, activation, loss, optimizer kind, schedule kind, clip kind, max-norm
axis); the hyper-parameters are passed as scalar tensors, so a new learning rate or
epsilon does not retrace, and ``load()`` assigns the weights and resets the slots.

The update rules are TF1's optimizer formulas written with tf ops (PITFALLS P07-P12),
not Keras 3's optimizers: Keras folds the lr into the momentum velocity (P07) and starts
RMSprop at 0 (P11), so a TF1 model ported to TF2 keeps its training only with these.
Clipping and max-norm use ``tf.clip_by_value`` / ``tf.clip_by_norm`` /
``tf.clip_by_global_norm``.
"""

from __future__ import annotations

from collections import OrderedDict

from typing import Mapping

import numpy as np

from parity.strategies import normalize_config, structure_of
from parity.portkit.variants import build_variant
from tf_impl import cached, framework_info, tensorflow

__all__ = ["build", "framework_info", "DensePort", "clear_cache", "clip_gradients"]

_SLOTS = {"sgd": (), "momentum": ("momentum",), "adam": ("m", "v"), "rmsprop": ("rms",), "adagrad": ("accumulator",)}
_HYPER = {
    "sgd": (),
    "momentum": ("momentum",),
    "adam": ("beta1", "beta2", "epsilon"),
    "rmsprop": ("decay", "epsilon"),
    "adagrad": ("initial_accumulator",),
}
_SCHED = {"constant": (), "polynomial": ("decay_steps", "end", "power"), "exponential": ("decay_steps", "rate")}
#: Most structures kept built (:func:`tf_impl.cached`: least recently used dropped); the ci
#: profile's covering structures all fit.
CACHE_SIZE = 32
_CACHE: "OrderedDict[tuple, _DenseModel]" = OrderedDict()


def _cached(key: tuple, make) -> "_DenseModel":
    return cached(_CACHE, key, make, CACHE_SIZE)


def structure(cfg: Mapping, dtype: str) -> tuple:
    """Return the cache key: everything that changes the traced function."""
    return (dtype, tuple(structure_of(cfg).items()))


def clear_cache() -> None:
    """Forget the cached models and their traced functions."""
    _CACHE.clear()


class _DenseModel:
    """Variables, slots and the traced step of one structure."""

    #: an open port uses this model's variables: another one builds its own
    held = False

    def __init__(self, cfg, dtype: str):
        tf = tensorflow()
        self.tf = tf
        self.dt = {"float64": tf.float64, "float32": tf.float32}[dtype]
        self.cfg0 = cfg
        widths = cfg["widths"]
        self.depth = len(widths) - 1
        self.vars: dict[str, object] = {}
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.vars[f"dense{i}/kernel"] = tf.Variable(tf.zeros([n_in, n_out], self.dt), name=f"dense{i}/kernel")
            self.vars[f"dense{i}/bias"] = tf.Variable(tf.zeros([n_out], self.dt), name=f"dense{i}/bias")
        self.opt_name = cfg["optimizer"]["name"]
        self.slots = {
            f"{n}/{s}": tf.Variable(tf.zeros_like(v), name=f"{n}/{s}") for n, v in self.vars.items() for s in _SLOTS[self.opt_name]
        }
        self.step_count = tf.Variable(tf.zeros([], self.dt), name="global_step")
        self.hyper_keys = ("lr",) + _HYPER[self.opt_name] + _SCHED[cfg["schedule"]["kind"]]
        if cfg["clip"] is not None:
            self.hyper_keys += ("clip",)
        if cfg["max_norm"] is not None:
            self.hyper_keys += ("radius",)
        signature = (
            tf.TensorSpec([None, widths[0]], self.dt),
            tf.TensorSpec([None, widths[-1]], self.dt),
            {k: tf.TensorSpec([], self.dt) for k in self.hyper_keys},
        )
        self.train_step = tf.function(self._train_step, input_signature=signature)
        # one traced call resets everything (eager assigns cost ~0.1 ms each, and a
        # property loads thousands of cases into the same variables)
        load_signature = ({n: tf.TensorSpec(v.shape, self.dt) for n, v in self.vars.items()}, tf.TensorSpec([], self.dt))
        self.load_fn = tf.function(self._load, input_signature=load_signature)

    def _load(self, values, initial_accumulator):
        tf = self.tf
        for n, v in self.vars.items():
            v.assign(values[n])
        for n, v in self.slots.items():
            # TF1's slot initial values: RMSprop's ms at 1, Adagrad's accumulator at the
            # configured value, the rest at 0 (PITFALLS P11, P12)
            kind = n.rsplit("/", 1)[1]
            fill = {"rms": tf.ones([], self.dt), "accumulator": initial_accumulator}.get(kind, tf.zeros([], self.dt))
            v.assign(tf.fill(tf.shape(v), fill))
        self.step_count.assign(tf.zeros([], self.dt))
        return {n: tf.identity(v) for n, v in self.vars.items()}

    def _lr(self, H):
        tf, sched = self.tf, self.cfg0["schedule"]
        gs = self.step_count
        if sched["kind"] == "polynomial":
            p = tf.minimum(gs, H["decay_steps"]) / H["decay_steps"]
            return (H["lr"] - H["end"]) * tf.pow(1 - p, H["power"]) + H["end"]
        if sched["kind"] == "exponential":
            e = gs / H["decay_steps"]
            if sched["staircase"]:
                e = tf.floor(e)
            return H["lr"] * tf.pow(H["rate"], e)
        return H["lr"]

    def _train_step(self, x, y, H):
        tf, cfg = self.tf, self.cfg0
        act = {"linear": tf.identity, "relu": tf.nn.relu, "tanh": tf.tanh, "sigmoid": tf.sigmoid}[cfg["activation"]]
        names = list(self.vars)
        with tf.GradientTape() as tape:
            h, forward = x, {}
            for i in range(self.depth):
                h = tf.matmul(h, self.vars[f"dense{i}/kernel"]) + self.vars[f"dense{i}/bias"]
                if i < self.depth - 1:
                    h = act(h)
                forward[f"dense{i}"] = h
            reduce = tf.reduce_mean if cfg["reduction"] == "mean" else tf.reduce_sum
            if cfg["loss"] == "mse":
                loss = reduce(tf.square(h - y))
            else:
                loss = reduce(tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=h))
        grads = tape.gradient(loss, [self.vars[n] for n in names])
        out = {"forward": forward, "loss": {"loss": loss}, "gradients": dict(zip(names, grads))}
        clip = cfg["clip"]
        if clip is not None:
            c = H["clip"]
            if clip["kind"] == "value":
                grads = [tf.clip_by_value(g, -c, c) for g in grads]
            elif clip["kind"] == "norm":
                grads = [tf.clip_by_norm(g, c) for g in grads]
            else:
                grads, _ = tf.clip_by_global_norm(grads, c)
            out["processed_gradients"] = dict(zip(names, grads))
        lr = self._lr(H)
        out["learning_rate"] = {"lr": lr}
        self._apply(names, grads, lr, H)
        self.step_count.assign_add(tf.ones([], self.dt))
        out["parameters"] = {n: tf.identity(v) for n, v in self.vars.items()}
        if self.slots:
            out["slots"] = {n: tf.identity(v) for n, v in self.slots.items()}
        mn = cfg["max_norm"]
        if mn is not None:
            out["constrained"] = {}
            for n, v in self.vars.items():
                if n.endswith("/kernel"):
                    v.assign(tf.clip_by_norm(v, H["radius"], axes=[mn["axis"]]))
                    out["constrained"][n] = tf.identity(v)
        return out

    def _apply(self, names, grads, lr, H):
        """TF1's update formulas (training_ops), one variable at a time."""
        tf, opt = self.tf, self.cfg0["optimizer"]
        name = self.opt_name
        if name == "adam":
            t = self.step_count + 1
            lr_t = lr * tf.sqrt(1 - tf.pow(H["beta2"], t)) / (1 - tf.pow(H["beta1"], t))
        for n, g in zip(names, grads):
            var = self.vars[n]
            if name == "sgd":
                var.assign_sub(lr * g)
            elif name == "momentum":
                acc = self.slots[f"{n}/momentum"]
                acc.assign(H["momentum"] * acc + g)
                var.assign_sub(lr * (g + H["momentum"] * acc) if opt["nesterov"] else lr * acc)
            elif name == "adam":
                m, v = self.slots[f"{n}/m"], self.slots[f"{n}/v"]
                m.assign(H["beta1"] * m + (1 - H["beta1"]) * g)
                v.assign(H["beta2"] * v + (1 - H["beta2"]) * tf.square(g))
                var.assign_sub(lr_t * m / (tf.sqrt(v) + H["epsilon"]))
            elif name == "rmsprop":
                ms = self.slots[f"{n}/rms"]
                ms.assign(ms + (tf.square(g) - ms) * (1 - H["decay"]))  # ApplyRMSProp's form
                var.assign_sub(lr * g / tf.sqrt(ms + H["epsilon"]))
            else:
                acc = self.slots[f"{n}/accumulator"]
                acc.assign_add(tf.square(g))
                var.assign_sub(lr * g / tf.sqrt(acc))


class DensePort:
    """The port protocol over a cached :class:`_DenseModel`."""

    def __init__(self, case, dtype: str):
        self.cfg = normalize_config(case.options)
        key = structure(self.cfg, dtype)
        self.m = _cached(key, lambda: _DenseModel(self.cfg, dtype))
        if self.m.held:  # another open port holds the cached model's variables (the conditioning run beside the
            self.m = _DenseModel(self.cfg, dtype)  # reference runs the same structure in float64): one of its own
        self.m.held = True
        self.dtype = dtype
        cfg = self.cfg
        values = {**cfg["optimizer"], **cfg["schedule"]}
        if cfg["clip"] is not None:
            values["clip"] = cfg["clip"]["limit"]
        if cfg["max_norm"] is not None:
            values["radius"] = cfg["max_norm"]["radius"]
        tf = self.m.tf
        self.hyper = {k: tf.constant(float(values[k]), self.m.dt) for k in self.m.hyper_keys}

    def parameters(self) -> dict[str, np.ndarray]:
        return {n: v.numpy() for n, v in self.m.vars.items()}

    def load(self, params: Mapping[str, np.ndarray]) -> None:
        m, tf = self.m, self.m.tf
        values = {n: tf.constant(np.asarray(params[n]), m.dt) for n in m.vars}
        m.load_fn(values, tf.constant(float(self.cfg["optimizer"].get("initial_accumulator", 0.0)), m.dt))

    def step(self, batch: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        out = self.m.train_step(batch["x"], batch["y"], self.hyper)
        return {stage: {k: v.numpy() for k, v in arrays.items()} for stage, arrays in out.items()}

    def close(self) -> None:
        """Release the handle; the cached model and its traced step stay."""
        self.m.held = False


def clip_gradients(arrays, kind: str, limit: float) -> list[np.ndarray]:
    """Clip ``arrays`` as TF does, eagerly: ``tf.clip_by_value``, ``tf.clip_by_norm`` (each) or ``tf.clip_by_global_norm``.

    Mirrors ``torch_impl.dense.clip_gradients`` (torch's own clipping functions), for the
    clipping-convention properties.
    """
    tf = tensorflow()
    ts = [tf.constant(np.asarray(a)) for a in arrays]
    if kind == "value":
        out = [tf.clip_by_value(t, -limit, limit) for t in ts]
    elif kind == "norm":
        out = [tf.clip_by_norm(t, limit) for t in ts]
    elif kind == "global_norm":
        out, _ = tf.clip_by_global_norm(ts, limit)
    else:
        raise ValueError(f"unknown clip kind {kind!r}; expected value, norm or global_norm")
    return [t.numpy() for t in out]


def build(case, dtype, variant=None):
    """Build (or reuse) the TF2 dense port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return DensePort(case, dtype)
