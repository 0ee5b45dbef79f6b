"""The run's dtype for a Keras program: floatx (and Keras 3's dtype policy) set while it builds and
runs (:func:`_floatx`), a model built at import time in another dtype rebuilt from its config with
its weights copied (refused with the fix where its own ``train_step`` holds the original), tf_keras'
Python-float hyper-parameters handed over as float64 numbers, ``tf.nn.leaky_relu`` computed with a
float64 alpha in float64 (TF's op keeps it in float32), and the notes that say so.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ... import tensorflow
from ...v1.capture.dtype import _shortest


def _decimal_alpha(alpha) -> float:
    """leaky_relu's slope as the program means it: a Python float as it is; a value that is exactly a
    float32 (a layer built in float32, ``np.float32(0.3)``) as the decimal it prints as."""
    a = float(alpha)
    return _shortest(a) if float(np.float32(a)) == a else a


def _leaky_relu_float64(original):
    """``tf.nn.leaky_relu`` that computes ``x > 0 ? x : x * alpha`` with a float64 alpha for float64 tensors.

    TF's LeakyRelu op keeps ``alpha`` as a float attribute, float32 in every graph: a float64 run
    would use 0.20000000298 (3e-9 relative from a float64 port's 0.2). The gradient is the op's:
    ``g`` where ``x > 0``, ``g * alpha`` elsewhere (at 0 too). Other dtypes, and Keras' symbolic
    tensors, go to TF's op."""
    def leaky_relu(features, alpha=0.2, name=None):
        tf = tensorflow()
        if not isinstance(features, tf.Tensor) or features.dtype != tf.float64 or tf.is_tensor(alpha):
            return original(features, alpha=alpha, name=name)
        with tf.name_scope(name or "LeakyRelu"):
            return tf.where(features > 0, features, features * tf.constant(_decimal_alpha(alpha), tf.float64))
    leaky_relu._parity_float64 = True
    return leaky_relu


@contextlib.contextmanager
def _float64_leaky_relu(dtype: str):
    """While a float64 Keras program builds and runs: ``tf.nn.leaky_relu`` with a float64 alpha."""
    if dtype != "float64":
        yield
        return
    tf = tensorflow()
    from tensorflow.python.ops import nn_ops

    saved = []
    for mod in {id(m): m for m in (nn_ops, tf.nn, tf.compat.v1.nn, tf.compat.v2.nn)}.values():
        fn = getattr(mod, "leaky_relu", None)
        if fn is not None and not getattr(fn, "_parity_float64", False):
            saved.append((mod, fn))
            mod.leaky_relu = _leaky_relu_float64(fn)
    try:
        yield
    finally:
        for mod, fn in reversed(saved):
            mod.leaky_relu = fn


@contextlib.contextmanager
def _floatx(dtype: str):
    """Set floatx of tf_keras and Keras 3 (whichever is installed) for the build (and each step), with
    ``tf.nn.leaky_relu`` computing with a float64 alpha in float64 (:func:`_float64_leaky_relu`)."""
    saved, policies = [], []
    for name in ("tf_keras", "keras"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        config = getattr(mod, "config", None)
        if config is not None and hasattr(config, "set_dtype_policy"):
            # Keras 3 layers take the global dtype policy (derived from floatx), read before floatx moves
            policies.append((config, config.dtype_policy()))
            config.set_dtype_policy(dtype)
        backend = getattr(mod, "backend", None)
        if backend is not None and hasattr(backend, "floatx"):
            saved.append((backend, backend.floatx()))
            backend.set_floatx(dtype)
    try:
        with _float64_leaky_relu(dtype):
            yield
    finally:
        for backend, value in saved:
            backend.set_floatx(value)
        for config, policy in policies:
            config.set_dtype_policy(policy)


def _retype_config(cfg, dtype: str):
    if isinstance(cfg, dict):
        return {k: _retype_config(v, dtype) for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_retype_config(v, dtype) for v in cfg]
    return dtype if cfg in ("float32", "float64") else cfg


def _rebuild(model, optimizer, dtype: str, K):
    """The model rebuilt from its config in ``dtype`` (weights copied), and a fresh optimizer of its config."""
    cfg = _retype_config(model.get_config(), dtype)
    with _floatx(dtype):
        clone = type(model).from_config(cfg) if not isinstance(model, K.Sequential) else K.Sequential.from_config(cfg)
        for a, b in zip(clone.weights, model.weights):
            a.assign(np.asarray(b.numpy(), dtype=dtype))
        # the float32 optimizer's config reads its rate back from a float32 variable
        # (0.0010000000474974513): take each float as the decimal it prints as
        ocfg = {k: _shortest(float(v)) if isinstance(v, (float, np.floating)) else v
                for k, v in optimizer.get_config().items()}
        opt = type(optimizer).from_config(ocfg)
    return clone, opt


def in_run_dtype(model, optimizer, dtype: str, K, train_step, where: str, notes: list[str]) -> tuple:
    """``(model, optimizer)`` in ``dtype``: as given, or rebuilt when the model was built in another (noted)."""
    weights = model.weights
    wdt = str(getattr(weights[0].dtype, "name", weights[0].dtype)) if weights else dtype
    if wdt != dtype:
        if train_step is not None:
            from parity.portkit.program import DtypeError

            raise DtypeError(f"{where}: the model was built in {wdt} at import time and train_step uses it: "
                             f"fix: build the model inside parity_program() (parity sets floatx to {dtype} first)")
        model, optimizer = _rebuild(model, optimizer, dtype, K)
        notes.append(f"{dtype}: the model was built in {wdt} at import time: rebuilt from its config in "
                     f"{dtype} (weights copied) with a fresh optimizer of the same config")
    return model, optimizer


def float64_hyper(optimizer, layers: list, dtype: str, keras_name: str) -> str | None:
    """float64: hand the optimizer its Python-float hyper-parameters as float64 numbers; the note, if any.

    tf_keras' optimizers step with ``tf.cast(self.momentum, var.dtype)`` and Keras 3's with
    ``ops.cast(self.momentum, variable.dtype)``: a Python float becomes a float32 tensor first, so a float64 run would use momentum 0.8999999762
    (measured: 1.25e-8 relative in the first SGD update against torch). The program's
    float32 run is unchanged.
    """
    if dtype != "float64":
        return None
    leaky = [f"{layer.name} alpha={_decimal_alpha(getattr(layer, 'alpha', getattr(layer, 'negative_slope', 0.0)))!r}"
             for layer in layers if type(layer).__name__ == "LeakyReLU"]
    leaky_note = ("float64: LeakyReLU " + ", ".join(leaky) + " computed as x > 0 ? x : x * alpha with a float64 alpha "
                  "(TF's LeakyRelu op keeps alpha in float32: 0.2 would be 0.20000000298)") if leaky else None
    fixed = []  # tf_keras and Keras 3 alike: both step with a cast of the Python float (ops.cast / tf.cast)
    hyper = getattr(optimizer, "_hyper", None)
    if isinstance(hyper, dict):
        # a legacy optimizer (tf_keras.optimizers.legacy) makes a float32 variable of each Python-float
        # hyper-parameter on first read (reading .momentum below is one): given as float64 first, its
        # variable is float64 (the rate and a legacy `decay` schedule were 9.99999975e-05 for 1e-4)
        for k, v in list(hyper.items()):
            if isinstance(v, float) and float(np.float32(v)) != v:
                hyper[k] = np.float64(v)
                fixed.append(f"{k}={v!r}")
    for attr in ("momentum", "beta_1", "beta_2", "epsilon", "rho", "initial_accumulator_value"):
        v = getattr(optimizer, attr, None)
        if isinstance(v, float) and float(np.float32(v)) != v:
            setattr(optimizer, attr, np.float64(v))
            fixed.append(f"{attr}={v!r}")
    for layer in layers:  # BatchNormalization: decay = convert_to_tensor(1 - momentum), float32
        v = getattr(layer, "momentum", None)
        if type(layer).__name__ == "BatchNormalization" and isinstance(v, float):
            layer.momentum = np.float64(v)
            fixed.append(f"{layer.name}.momentum={v!r}")
    note = (f"float64: {keras_name} casts Python-float hyper-parameters through float32 "
            f"(tf.cast(0.9, float64) = 0.8999999762): {', '.join(fixed)} given as float64") if fixed else None
    return "; ".join(n for n in (note, leaky_note) if n) or None


def batch_norm_note(dtype: str, touched: list[str]) -> str:
    """The note on the BatchNormalization layers kept to the fused kernel's moving-variance convention."""
    return (f"{dtype}: BatchNormalization {', '.join(touched)} has no float64 fused kernel and "
            "runs non-fused, whose moving variance update uses the biased batch variance; parity "
            "scales it by n/(n-1), the fused kernel's (float32) convention")
