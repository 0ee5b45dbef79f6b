"""Data-parallel seeds in TF2: ``tf.distribute.MirroredStrategy`` over logical CPU devices.

The process's CPU is split into ``world_size`` logical devices
(``tf.config.set_logical_device_configuration``), which TensorFlow allows only before it
initialises its devices: the cases run this port in a process of its own (the case's
``isolate`` option; ``build`` says so in one line when TensorFlow was already initialised).
With GPUs, MirroredStrategy takes them as they are (one replica per GPU, NCCL all-reduce):
docs/distributed.md.

Models (``case.option("model")``), as one writes a custom training loop under a strategy
(the TensorFlow distributed-training tutorial's form):

* ``mlp``: seed 002's 784-300-100-10 ReLU MLP, Keras ``Dense`` layers, softmax
  cross-entropy per example, ``tf.nn.compute_average_loss(per_example,
  global_batch_size)``, ``keras.optimizers.SGD(lr)``;
* ``bn_convnet``: seed 003's convnet, ``BatchNormalization(synchronized=True)`` (the batch
  moments all-reduced over the replicas), the harness's dropout masks split with the batch,
  ``SGD(lr, momentum, nesterov=True)``.

One ``tf.function`` step: ``strategy.run`` of the replica step on each replica's slice of
the global batch (``experimental_distribute_values_from_function``: replica r takes rows
``[r*n/R, (r+1)*n/R)``), inside which the tape's per-replica gradients go to
``optimizer.apply_gradients`` (Keras sums them over the replicas with
``replica_context.all_reduce(SUM)`` and applies the sum). The port records that same
all-reduce of the same gradients as the reduced gradients (a sum of R values: the same
numbers). Recorded, canonical (see ``torch_impl/distributed/``): every replica's
activations concatenated in replica order; ``replica<r>/loss`` (its
``compute_average_loss``) and ``loss`` (their sum, ``strategy.reduce(SUM)``);
``replica<r>/<param>`` gradients (before the all-reduce) and ``<param>`` (after);
learning rate, parameters, Keras velocity slots and BatchNorm moving statistics.

Variants (porting mistakes):

* ``plain_mean``: ``tf.reduce_mean`` of the replica's per-example losses instead of
  ``compute_average_loss``: each replica's loss is its local mean, and the SUM all-reduce
  makes every gradient ``world_size`` times too large;
* ``local_bn``: Keras' default ``BatchNormalization()`` (``synchronized=False``): each
  replica normalises with its own shard's moments.
"""

from __future__ import annotations

import numpy as np

from .. import tensorflow
from . import keras_framework_info

__all__ = ["build", "framework_info", "DistributedPort", "VARIANTS", "MODELS"]

VARIANTS = (None, "plain_mean", "local_bn")
MODELS = ("mlp", "bn_convnet")
MLP_LAYERS = ("hidden1", "hidden2", "output")
CONV_LAYERS = ("conv", "bn", "relu", "pool", "flatten", "dropout", "dense")

_STRATEGIES: dict = {}


def framework_info() -> dict:
    info = keras_framework_info()
    info["device"] = f"{info['device']} (MirroredStrategy)"
    return info


def strategy(world: int):
    """Return a MirroredStrategy over ``world`` logical CPU devices (splitting the CPU on first use)."""
    if world in _STRATEGIES:
        return _STRATEGIES[world]
    tf = tensorflow()
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(world)])
    except RuntimeError:
        pass  # already initialised: usable only if it already has the devices
    logical = tf.config.list_logical_devices("CPU")
    if len(logical) < world:
        raise RuntimeError(
            f"MirroredStrategy needs {world} logical CPU devices but TensorFlow was initialised with {len(logical)}: "
            "run this port in a process of its own (case option 'isolate')")
    _STRATEGIES[world] = tf.distribute.MirroredStrategy([d.name for d in logical[:world]])
    return _STRATEGIES[world]


def _masked_dropout(keras):
    class MaskedDropout(keras.layers.Layer):
        """Inverted dropout with a given keep mask; the identity unless ``training``, like ``Dropout``."""

        def __init__(self, keep, **kwargs):
            super().__init__(**kwargs)
            self.keep = keep

        def call(self, inputs, training=None):
            x, mask = inputs
            return x * mask / self.keep if training else x

    return MaskedDropout


class DistributedPort:
    def __init__(self, case, dtype, variant=None):
        tf = tensorflow()
        import keras

        o = case.option
        self.tf, self.keras, self.case, self.dtype, self.variant = tf, keras, case, dtype, variant
        self.model_kind = o("model")
        if self.model_kind not in MODELS:
            raise ValueError(f"case option model must be one of {MODELS}, not {self.model_kind!r}")
        self.world = int(o("world_size", 2))
        self.strategy = strategy(self.world)
        self.lr = o("lr", 0.01)
        previous = keras.config.floatx()
        keras.config.set_floatx(dtype)  # the optimizer's learning-rate variable takes floatx (see bn_convnet.py)
        try:
            with self.strategy.scope():
                if self.model_kind == "mlp":
                    self._build_mlp(keras, dtype)
                    self.opt = keras.optimizers.SGD(learning_rate=self.lr)
                else:
                    self._build_convnet(keras, dtype, o)
                    # np.float64: Keras 3 casts a Python-float momentum through float32 (bn_convnet.py)
                    self.opt = keras.optimizers.SGD(learning_rate=self.lr, momentum=np.float64(o("momentum", 0.9)),
                                                    nesterov=o("nesterov", True))
                self.opt.build(self.trainable)
        finally:
            keras.config.set_floatx(previous)
        self._train = tf.function(self._step)

    # -- the networks -----------------------------------------------------------------------
    def _build_mlp(self, keras, dtype):
        self.layers = {}
        width = 784
        for name, units in zip(MLP_LAYERS, (300, 100, 10)):
            layer = keras.layers.Dense(units, activation="relu" if name != "output" else None, name=name, dtype=dtype)
            layer.build((None, width))
            self.layers[name] = layer
            width = units
        self.names = {f"{n}/{w}": getattr(self.layers[n], w) for n in MLP_LAYERS for w in ("kernel", "bias")}
        self.state = {}
        self.trainable = list(self.names.values())

    def _build_convnet(self, keras, dtype, o):
        shape = tuple(self.case.data.args.get("shape", (32, 32, 3)))
        side = shape[0] // 2
        features = side * side * o("filters", 8)
        keras.utils.set_random_seed(self.case.seed)
        x_in = keras.Input(shape, name="x", dtype=dtype)
        mask_in = keras.Input((features,), name="keep_mask", dtype=dtype)
        conv = keras.layers.Conv2D(o("filters", 8), 3, padding="same", use_bias=False, name="conv", dtype=dtype)
        bn = keras.layers.BatchNormalization(momentum=o("bn_momentum", 0.99), epsilon=o("bn_epsilon", 1e-3),
                                             synchronized=self.variant != "local_bn", name="bn", dtype=dtype)
        dense = keras.layers.Dense(o("classes", 10), activation="softmax", name="dense", dtype=dtype)
        acts = {}
        acts["conv"] = h = conv(x_in)
        acts["bn"] = h = bn(h)
        acts["relu"] = h = keras.layers.ReLU(name="relu", dtype=dtype)(h)
        acts["pool"] = h = keras.layers.MaxPooling2D(2, name="pool", dtype=dtype)(h)
        acts["flatten"] = h = keras.layers.Flatten(name="flatten", dtype=dtype)(h)
        acts["dropout"] = h = _masked_dropout(keras)(o("keep", 0.75), name="dropout", dtype=dtype)([h, mask_in])
        acts["dense"] = dense(h)
        self.probe = keras.Model([x_in, mask_in], [acts[k] for k in CONV_LAYERS])
        self.names = {"conv/kernel": conv.kernel, "bn/gamma": bn.gamma, "bn/beta": bn.beta,
                      "dense/kernel": dense.kernel, "dense/bias": dense.bias}
        self.state = {"bn/moving_mean": bn.moving_mean, "bn/moving_variance": bn.moving_variance}
        self.trainable = list(self.names.values())

    def _forward(self, inputs):
        if self.model_kind == "mlp":
            h1 = self.layers["hidden1"](inputs[0])
            h2 = self.layers["hidden2"](h1)
            logits = self.layers["output"](h2)
            return {"hidden1": h1, "hidden2": h2, "logits": logits}
        return dict(zip(CONV_LAYERS, self.probe(list(inputs), training=True)))

    def _per_example_loss(self, y, acts):
        k = self.keras
        if self.model_kind == "mlp":
            return k.losses.categorical_crossentropy(y, acts["logits"], from_logits=True)
        return k.losses.categorical_crossentropy(y, acts["dense"])

    # -- one step -----------------------------------------------------------------------------
    def _replica_step(self, inputs, y, global_batch):
        tf = self.tf
        ctx = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            acts = self._forward(inputs)
            per_example = self._per_example_loss(y, acts)
            if self.variant == "plain_mean":
                loss = tf.reduce_mean(per_example)
            else:
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, self.trainable)
        reduced = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        self.opt.apply_gradients(zip(grads, self.trainable))
        return acts, loss, grads, reduced

    def _step(self, inputs, y, global_batch):
        tf, s = self.tf, self.strategy
        lr = tf.identity(self.opt.learning_rate)
        acts, loss, grads, reduced = s.run(self._replica_step, args=(inputs, y, global_batch))
        out = {
            "forward": {k: s.experimental_local_results(v) for k, v in acts.items()},
            "replica_loss": s.experimental_local_results(loss),
            "loss": s.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
            "replica_grads": [s.experimental_local_results(g) for g in grads],
            "grads": [s.experimental_local_results(g)[0] for g in reduced],
            "lr": lr,
            "parameters": {n: tf.identity(v.value) for n, v in self.names.items()},
            "state": {n: tf.identity(v.value) for n, v in self.state.items()},
        }
        if self.model_kind == "bn_convnet":
            out["slots"] = {f"{n}/momentum": tf.identity(self.opt.momentums[self.opt._get_variable_index(v)].value)
                            for n, v in self.names.items()}
        return out

    def _distribute(self, array, n):
        """Give replica r rows [r*n/R, (r+1)*n/R) of ``array`` (the split DDP's ranks take)."""
        if n % self.world:
            raise ValueError(f"the global batch ({n}) does not split evenly over {self.world} replicas")
        per = n // self.world

        def shard(ctx):
            r = ctx.replica_id_in_sync_group
            return self.tf.constant(array[r * per:(r + 1) * per])

        return self.strategy.experimental_distribute_values_from_function(shard)

    def step(self, batch):
        tf = self.tf
        keys = ("X",) if self.model_kind == "mlp" else ("x", "keep_mask")
        n = batch[keys[0]].shape[0]
        inputs = tuple(self._distribute(np.asarray(batch[k]), n) for k in keys)
        y = self._distribute(np.asarray(batch["y"]), n)
        raw = self._train(inputs, y, tf.constant(n, dtype=tf.int64))
        names = list(self.names)
        out = {
            "forward": {k: np.concatenate([t.numpy() for t in v], axis=0) for k, v in raw["forward"].items()},
            "loss": {"loss": raw["loss"].numpy(),
                     **{f"replica{r}/loss": t.numpy() for r, t in enumerate(raw["replica_loss"])}},
            "gradients": {n_: g.numpy() for n_, g in zip(names, raw["grads"])},
            "learning_rate": {"lr": raw["lr"].numpy()},
            "parameters": {k: v.numpy() for k, v in raw["parameters"].items()},
        }
        for r in range(self.world):
            for n_, g in zip(names, raw["replica_grads"]):
                out["gradients"][f"replica{r}/{n_}"] = g[r].numpy()
        if "slots" in raw:
            out["slots"] = {k: v.numpy() for k, v in raw["slots"].items()}
        if raw["state"]:
            out["state"] = {k: v.numpy() for k, v in raw["state"].items()}
        return out

    def settings(self):
        o = self.case.option
        return {"world_size": self.world, "lr": o("lr"),
                "loss": "per-replica mean" if self.variant == "plain_mean" else "compute_average_loss (global batch)",
                "allreduce": "sum (Keras optimizer)",
                "batchnorm": "local" if self.variant == "local_bn" else "synchronised"}

    def parameters(self):
        out = {n: v.numpy() for n, v in self.names.items()}
        out.update({n: v.numpy() for n, v in self.state.items()})
        return out

    def load(self, params):
        for n, v in list(self.names.items()) + list(self.state.items()):
            v.assign(np.asarray(params[n], dtype=self.dtype))

    def close(self):
        pass


def build(case, dtype, variant=None):
    """Build the TF2 MirroredStrategy port of ``case`` in ``dtype``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of the TF2 distributed port; expected one of {VARIANTS[1:]}")
    return DistributedPort(case, dtype, variant)
