"""Draw a case's initial parameters in numpy, once, for every port.

The initializers follow TensorFlow's definitions (the seeds' code is TF1), so the
same distribution a TF1 user had is what every port starts from. Each tensor gets
its own generator, derived from the case seed and the tensor's name, so adding a
parameter does not change the others.
"""

from __future__ import annotations

import math
import zlib
from typing import Mapping

import numpy as np

from parity.cases.case import Case, Init
from parity.errors import ParityError

__all__ = ["draw_parameters", "draw", "fans", "perturbed", "INITIALIZERS", "UNIT_ROUNDOFF"]

#: float32's unit roundoff (2^-24): the relative size of one float32 rounding.
UNIT_ROUNDOFF = 2.0**-24


def fans(shape: tuple[int, ...]) -> tuple[float, float]:
    """Return (fan_in, fan_out) of a canonical (TensorFlow-layout) shape, as TF computes them."""
    if len(shape) < 1:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    receptive = float(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def _truncated(rng: np.random.Generator, shape, mean: float, stddev: float) -> np.ndarray:
    # TF's truncated_normal redraws values outside two standard deviations.
    out = rng.normal(mean, stddev, size=shape)
    bad = np.abs(out - mean) > 2 * stddev
    while bad.any():
        out[bad] = rng.normal(mean, stddev, size=int(bad.sum()))
        bad = np.abs(out - mean) > 2 * stddev
    return out


def _random_normal(rng, shape, mean=0.0, stddev=1.0):
    return rng.normal(mean, stddev, size=shape)


def _truncated_normal(rng, shape, mean=0.0, stddev=1.0):
    return _truncated(rng, shape, mean, stddev)


def _glorot_uniform(rng, shape):
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def _glorot_normal(rng, shape):
    fan_in, fan_out = fans(shape)
    # Keras/TF2 glorot_normal: truncated normal corrected to the target std.
    return _truncated(rng, shape, 0.0, math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978)


def _variance_scaling(rng, shape, factor=2.0, mode="FAN_IN", uniform=False):
    # tf.contrib.layers.variance_scaling_initializer (the TF1 "He init" of seed 002).
    fan_in, fan_out = fans(shape)
    n = {"FAN_IN": fan_in, "FAN_OUT": fan_out, "FAN_AVG": (fan_in + fan_out) / 2.0}[mode]
    if uniform:
        limit = math.sqrt(3.0 * factor / n)
        return rng.uniform(-limit, limit, size=shape)
    return _truncated(rng, shape, 0.0, math.sqrt(1.3 * factor / n))


def _he_normal(rng, shape):
    fan_in, _ = fans(shape)
    return _truncated(rng, shape, 0.0, math.sqrt(2.0 / fan_in) / 0.87962566103423978)


def _constant(rng, shape, value=0.0):
    return np.full(shape, float(value))


def _value(rng, shape, value):
    out = np.asarray(value, dtype=np.float64)
    if out.shape != tuple(shape):
        out = np.broadcast_to(out, shape).copy()
    return out


INITIALIZERS = {
    "random_normal": _random_normal,
    "truncated_normal": _truncated_normal,
    "glorot_uniform": _glorot_uniform,
    "xavier": _glorot_uniform,  # tf.contrib.layers.xavier_initializer() is glorot uniform
    "glorot_normal": _glorot_normal,
    "variance_scaling": _variance_scaling,
    "he_normal": _he_normal,
    "constant": _constant,
    "zeros": lambda rng, shape: np.zeros(shape),
    "ones": lambda rng, shape: np.ones(shape),
    "value": _value,
}


def draw(spec: Init, rng: np.random.Generator) -> np.ndarray:
    """Draw one tensor from its :class:`~parity.cases.case.Init`, in float64."""
    try:
        fn = INITIALIZERS[spec.kind]
    except KeyError:
        raise ParityError(f"unknown initializer {spec.kind!r}; expected one of {', '.join(INITIALIZERS)}") from None
    return np.asarray(fn(rng, spec.shape, **dict(spec.args)), dtype=np.float64)


def draw_parameters(case: Case, dtype: str = "float64", *, seed: int | None = None) -> dict[str, np.ndarray]:
    """Return the case's initial parameters (and non-trainable variables), in ``dtype``.

    The values are drawn in float64 and rounded once, so the float32 run starts from
    the float64 run's weights rounded to float32.
    """
    base = case.seed if seed is None else seed
    out: dict[str, np.ndarray] = {}
    for name, spec in case.params.items():
        rng = np.random.default_rng([base, zlib.crc32(name.encode())])
        out[name] = draw(spec, rng).astype(dtype)
    return out


def as_dtype(arrays: Mapping[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """Cast floating arrays to ``dtype``; integers and booleans are left as they are."""
    return {
        k: (np.asarray(v).astype(dtype) if np.issubdtype(np.asarray(v).dtype, np.floating) else np.asarray(v))
        for k, v in arrays.items()
    }


def perturbed(arrays: Mapping[str, np.ndarray], rng: np.random.Generator, rel: float = UNIT_ROUNDOFF) -> dict[str, np.ndarray]:
    """Return the arrays with each floating element multiplied by ``1 + rel * U(-1, 1)`` (new arrays).

    What a float32 rounding does to a value, drawn: the conditioning run
    (:mod:`parity.comparison.envelope`) perturbs a float64 run's weights and data so, and measures how
    far each tensor moves. Integers and booleans (labels, masks) are left as they are.
    """
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if np.issubdtype(v.dtype, np.floating):
            v = v * (1.0 + rel * rng.uniform(-1.0, 1.0, size=v.shape)).astype(v.dtype)
        out[k] = v
    return out
