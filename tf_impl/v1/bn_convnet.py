"""Seed 003 in TF1-style Keras: tf_keras (Keras 2) in graph mode, ``fit`` vs a hand-written step.

The port disables eager execution, so it must run in a process of its own (the cases
list its ports under ``options["isolate"]``; the runner records them in a subprocess).

The port trains as ``fit`` does: ``model.compile`` + ``model.train_on_batch`` (one step
per batch, no shuffling); Keras feeds the learning phase True and runs the optimizer's and
the BatchNorm layer's updates. The seed's hand-written step with its fix is an equivalent
form (:data:`ALTERNATIVES` ``step``): ``optimizer.get_updates(loss, weights)`` + the
model's updates (BatchNorm moving averages) in one ``K.function`` whose inputs include
``K.symbolic_learning_phase()``, fed True. The seed's two broken steps (the learning phase
not fed, PITFALLS P04; the BatchNorm updates not run, P05) live in
``tf_impl/v1/mistakes/bn_convnet.py``.

What ``fit`` exposes: gradients cannot be had from ``train_on_batch``. Before each
``train_on_batch`` the port evaluates the activations, the loss and the gradients with a
``K.function`` fed learning phase True and given *no* updates (so nothing moves: no
BatchNorm moving average and no optimizer step happen twice); after it, it reads the
parameters, the optimizer's slots and the moving statistics. The hand-written steps fetch
the same tensors from the one ``K.function`` that also runs the updates: its fetches are
computed from the forward pass the updates depend on, so they are the pre-update values.

Conventions (``settings()``): BatchNorm momentum 0.99 and epsilon 1e-3 (Keras), built
with ``fused=False``: FusedBatchNormV3 has no float64 kernel, so with the default
``fused=None`` tf_keras would use the fused (Bessel-corrected moving variance) path in
float32 and silently the non-fused (biased) one in float64; pinning it gives one
convention in both dtypes, the one Keras 3 uses. The legacy SGD (``get_updates`` exists
only there) keeps the velocity ``m = mu*m - lr*g`` (slot ``momentum``) and steps
``var += mu*m - lr*g``: the slots are reported as that velocity (the canonical
convention). ``floatx`` is the case's dtype; but the legacy optimizers store Python-float
hyper-parameters in float32 variables whatever floatx is (``OptimizerV2.add_weight``
defaults to float32), so a float64 run would step with lr 0.10000000149 and momentum
0.89999998 (3.3e-7 relative from an exact float64 step after 50 steps, measured against
torch): in float64 the port passes them as float64 tensors, which the optimizer uses as
they are. Likewise the BatchNorm momentum: with a symbolic learning phase tf_keras picks
it with ``smart_cond(training, lambda: momentum, lambda: 1.0)``, a float32 tensor for a
Python float, and the decay ``1 - momentum`` becomes float32 0.0099999905 (2.2e-8
relative in the moving mean after step 0, measured against Keras 3 and torch): in float64
the port passes ``np.float64(0.99)``.
"""

from __future__ import annotations

import numpy as np

from parity.portkit.variants import build_variant
from tf_impl import framework_info as _framework_info, tensorflow

__all__ = ["build", "framework_info", "BnConvnetPort", "HandWrittenStep", "ALTERNATIVES"]
LAYERS = ("conv", "bn", "relu", "pool", "flatten", "dropout", "dense")


def framework_info() -> dict:
    info = _framework_info()
    import tf_keras

    info["keras"] = tf_keras.__version__
    return info


def _graph_keras():
    """Switch this process to graph mode and import tf_keras (Keras 2) for it."""
    tf = tensorflow()
    tf.compat.v1.disable_eager_execution()
    if tf.executing_eagerly():
        raise RuntimeError(
            "the TF1 bn_convnet port needs graph mode and this process already runs eagerly: "
            "run it isolated (python -m parity record CASE --port tf1 ...)"
        )
    import tf_keras

    return tf, tf_keras


def _masked_dropout(keras):
    K = keras.backend

    class MaskedDropout(keras.layers.Layer):
        """Inverted dropout with a given keep mask, switched by the learning phase like ``Dropout``."""

        def __init__(self, keep, **kwargs):
            super().__init__(**kwargs)
            self.keep = keep

        def call(self, inputs, training=None):
            x, mask = inputs
            return K.in_train_phase(lambda: x * mask / self.keep, lambda: x, training=training)

    return MaskedDropout


class BnConvnetPort:
    def __init__(self, case, dtype):
        tf, keras = _graph_keras()
        tf1, K = tf.compat.v1, keras.backend
        self.tf, self.K, self.case, self.dtype = tf, K, case, dtype
        o = case.option
        self.keep, self.lr, self.mu = o("keep", 0.75), o("lr", 0.1), o("momentum", 0.9)
        self.bn_momentum, self.eps = o("bn_momentum", 0.99), o("bn_epsilon", 1e-3)
        self.fused = o("bn_fused", False)
        shape = tuple(case.data.args.get("shape", (32, 32, 3)))
        side = shape[0] // 2
        features = side * side * o("filters", 8)
        K.clear_session()
        K.set_floatx(dtype)
        config = tf1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        # tf_keras 2.21 no longer exports set_session and symbolic_learning_phase (TF 1.14's
        # K had both); its backend module still defines them.
        from tf_keras.src import backend as keras_backend

        keras_backend.set_session(tf1.Session(config=config))  # one thread, like GraphPort
        tf1.set_random_seed(case.seed)
        x_in = keras.Input(shape, name="x")
        mask_in = keras.Input((features,), name="keep_mask")
        conv = keras.layers.Conv2D(o("filters", 8), 3, padding="same", use_bias=False, name="conv")
        # float64: a Python-float momentum goes through a float32 tf.cond on the learning phase,
        # so the decay would be float32(1 - 0.99) = 0.0099999905 (see the module docstring).
        bn_momentum = np.float64(self.bn_momentum) if dtype == "float64" else self.bn_momentum
        bn = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=self.eps, fused=self.fused, name="bn")
        dense = keras.layers.Dense(o("classes", 10), activation="softmax", name="dense")
        acts = {}
        acts["conv"] = h = conv(x_in)
        acts["bn"] = h = bn(h)
        acts["relu"] = h = keras.layers.ReLU(name="relu")(h)
        acts["pool"] = h = keras.layers.MaxPooling2D(2, name="pool")(h)
        acts["flatten"] = h = keras.layers.Flatten(name="flatten")(h)
        acts["dropout"] = h = _masked_dropout(keras)(self.keep, name="dropout")([h, mask_in])
        acts["dense"] = out = dense(h)
        self.model = keras.Model([x_in, mask_in], out)
        # The legacy optimizers keep Python-float hyper-parameters in float32 variables whatever
        # floatx is (see the module docstring): give a float64 run float64 tensors.
        hyper = (lambda v: tf.constant(v, dtype=tf.float64)) if dtype == "float64" else float
        self.opt = keras.optimizers.legacy.SGD(learning_rate=hyper(self.lr), momentum=hyper(self.mu),
                                               nesterov=o("nesterov", True))
        self.loss_fn = loss_fn = keras.losses.CategoricalCrossentropy()
        y_true = tf1.placeholder(K.floatx(), [None, o("classes", 10)], name="y_true")
        self.names = {
            "conv/kernel": conv.kernel,
            "bn/gamma": bn.gamma,
            "bn/beta": bn.beta,
            "dense/kernel": dense.kernel,
            "dense/bias": dense.bias,
        }
        self.state = {"bn/moving_mean": bn.moving_mean, "bn/moving_variance": bn.moving_variance}
        weights = list(self.names.values())
        loss = loss_fn(y_true, out)
        fetches = [loss] + [acts[k] for k in LAYERS] + self.opt.get_gradients(loss, weights)
        phase = keras_backend.symbolic_learning_phase()
        self.fn = self._train_function(loss, weights, [x_in, mask_in, y_true], phase, fetches)
        self.slots = {f"{n}/momentum": self.opt.get_slot(v, "momentum") for n, v in self.names.items()}
        self.lr_t = self.opt._get_hyper("learning_rate", K.floatx())
        keras_backend.get_session().run(tf1.global_variables_initializer())

    def settings(self):
        return {
            "bn_momentum": float(self.bn_momentum),
            "bn_momentum_convention": "tf",
            "bn_epsilon": float(self.eps),
            "bn_running_var": "biased",
            "dropout_mask": "harness mask, x*mask/keep when training, identity otherwise",
            "bn_fused": self.fused,
            "bn_moving_variance": "biased (tf_keras non-fused BatchNormalization)",
            "dropout_detail": f"harness mask, x*mask/{self.keep} in the training phase, identity otherwise",
            "learning_phase": "fit feeds True",
            "sgd": {"lr": self.lr, "momentum": self.mu, "nesterov": True, "class": "tf_keras.optimizers.legacy.SGD"},
            "slots": "Keras velocity convention: m = mu*m - lr*g",
        }

    def _train_function(self, loss, weights, inputs, phase, fetches):
        """Compile for ``fit``; return a ``K.function`` with *no* updates, for the diagnostics."""
        self.model.compile(optimizer=self.opt, loss=self.loss_fn)
        self.model._make_train_function()  # creates the slots now, so they load and read like the rest
        return self.K.function(inputs + [phase], fetches)

    def _run(self, x, mask, y):
        """Return the fetches (before the update), then train one step."""
        values = self.fn([x, mask, y, True])
        self.model.train_on_batch([x, mask], y)
        return values

    def parameters(self):
        values = self.K.batch_get_value(list(self.names.values()) + list(self.state.values()))
        return dict(zip(list(self.names) + list(self.state), values))

    def load(self, params):
        pairs = list(self.names.items()) + list(self.state.items())
        self.K.batch_set_value([(v, np.asarray(params[n], dtype=self.dtype)) for n, v in pairs])

    def step(self, batch):
        K = self.K
        values = self._run(batch["x"], batch["keep_mask"], batch["y"])
        n = len(LAYERS)
        loss, acts, grads = values[0], values[1 : 1 + n], values[1 + n :]
        after = K.batch_get_value(list(self.names.values()) + list(self.slots.values()) + list(self.state.values()))
        p, s = len(self.names), len(self.slots)
        return {
            "forward": dict(zip(LAYERS, acts)),
            "loss": {"loss": np.asarray(loss)},
            "gradients": dict(zip(self.names, grads)),
            "learning_rate": {"lr": np.asarray(K.get_value(self.lr_t))},
            "parameters": dict(zip(self.names, after[:p])),
            "slots": dict(zip(self.slots, after[p : p + s])),
            "state": dict(zip(self.state, after[p + s :])),
        }

    def close(self):
        self.K.clear_session()


class HandWrittenStep(BnConvnetPort):
    """The seed's fixed step: optimizer and BatchNorm updates in one ``K.function``, learning phase fed True."""

    def _updates(self, loss, weights):
        return self.opt.get_updates(loss, weights) + self.model.updates

    def _train_function(self, loss, weights, inputs, phase, fetches):
        # The fetches are computed from the forward pass the updates depend on: pre-update values.
        return self.K.function(inputs + [phase], fetches, updates=self._updates(loss, weights))

    def _run(self, x, mask, y):
        return self.fn([x, mask, y, True])

    def settings(self):
        return {**super().settings(), "learning_phase": "fed True"}


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"step": HandWrittenStep}


def build(case, dtype, variant=None):
    """Build the TF1-style Keras seed-003 port (graph mode: run it in its own process)."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return BnConvnetPort(case, dtype)
