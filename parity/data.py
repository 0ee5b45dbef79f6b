"""Draw the batches a case feeds, one per step, in numpy, from the case's seed.

Every port receives the same batches. Generators are registered by name so a case
names its data as plain data (:class:`~parity.cases.Data`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .cases import Case
from .errors import ParityError
from .init import as_dtype

__all__ = ["batches", "register_data", "DATA"]

DATA: dict[str, Callable[..., list[dict[str, np.ndarray]]]] = {}


def register_data(name: str):
    """Register a batch generator ``fn(case, rng, **args) -> list of batches``."""

    def deco(fn):
        DATA[name] = fn
        return fn

    return deco


@register_data("constant")
def _constant(case: Case, rng: np.random.Generator, **values) -> list[dict[str, np.ndarray]]:
    """The same batch every step (seed 004: x=1, y=3)."""
    batch = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    return [dict(batch) for _ in range(case.steps)]


@register_data("uniform")
def _uniform(case: Case, rng: np.random.Generator, *, key: str, shape, low=-1.0, high=1.0):
    """A fresh uniform [low, high) batch each step (seed 000: one input in [-1, 1))."""
    return [{key: rng.uniform(low, high, size=tuple(shape))} for _ in range(case.steps)]


@register_data("normal")
def _normal(case: Case, rng: np.random.Generator, *, key: str, shape, mean=0.0, stddev=1.0, targets=None):
    """Gaussian inputs; with ``targets`` ({"key": ..., "shape": ...}) also Gaussian targets."""
    out = []
    for _ in range(case.steps):
        batch = {key: rng.normal(mean, stddev, size=tuple(shape))}
        if targets:
            batch[targets["key"]] = rng.normal(0.0, 1.0, size=tuple(targets["shape"]))
        out.append(batch)
    return out


def batches(case: Case, dtype: str = "float64") -> list[dict[str, np.ndarray]]:
    """Return the case's batches, one dict per step, floats cast to ``dtype``."""
    from . import datasets  # noqa: F401  (registers the dataset-backed generators)
    try:
        fn = DATA[case.data.kind]
    except KeyError:
        raise ParityError(
            f"unknown data generator {case.data.kind!r}; expected one of {', '.join(sorted(DATA))}", case=case.name
        ) from None
    rng = np.random.default_rng([case.seed, 1])
    drawn = fn(case, rng, **dict(case.data.args))
    if len(drawn) != case.steps:
        raise ParityError(f"data generator gave {len(drawn)} batches for {case.steps} steps", case=case.name)
    return [as_dtype(b, dtype) for b in drawn]
