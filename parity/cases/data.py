"""Draw the batches a case feeds, one per step, in numpy, from the case's seed.

Every port receives the same batches. Generators are registered by name so a case
names its data as plain data (:class:`~parity.cases.case.Data`). A generator may return a list
or (better: memory then does not grow with the steps) yield one batch at a time;
:func:`iter_batches` draws them lazily, :func:`batches` returns the list (short cases, tests).

Imports go one way: :mod:`parity.cases.datasets` (the data sets) knows nothing of this module;
this module registers its generators.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from parity.cases import datasets
from parity.cases.case import Case
from parity.errors import ParityError
from parity.cases.params import as_dtype

__all__ = ["batches", "iter_batches", "given_batches", "register_data", "DATA"]

DATA: dict[str, Callable[..., Iterable[dict[str, np.ndarray]]]] = {}


def register_data(name: str):
    """Register a batch generator ``fn(case, rng, **args) -> iterable of batches`` (one per step)."""

    def deco(fn):
        DATA[name] = fn
        return fn

    return deco


@register_data("constant")
def _constant(case: Case, rng: np.random.Generator, **values) -> Iterator[dict[str, np.ndarray]]:
    """The same batch every step (seed 004: x=1, y=3)."""
    batch = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    return (dict(batch) for _ in range(case.steps))


@register_data("uniform")
def _uniform(case: Case, rng: np.random.Generator, *, key: str, shape, low=-1.0, high=1.0):
    """A fresh uniform [low, high) batch each step (seed 000: one input in [-1, 1))."""
    return ({key: rng.uniform(low, high, size=tuple(shape))} for _ in range(case.steps))


@register_data("normal")
def _normal(case: Case, rng: np.random.Generator, *, key: str, shape, mean=0.0, stddev=1.0, targets=None):
    """Gaussian inputs; with ``targets`` ({"key": ..., "shape": ...}) also Gaussian targets."""
    for _ in range(case.steps):
        batch = {key: rng.normal(mean, stddev, size=tuple(shape))}
        if targets:
            batch[targets["key"]] = rng.normal(0.0, 1.0, size=tuple(targets["shape"]))
        yield batch


register_data("digits")(datasets.digit_batches)
register_data("images")(datasets.image_batches)


def iter_batches(case: Case, dtype: str = "float64") -> Iterator[dict[str, np.ndarray]]:
    """Yield the case's batches one step at a time, floats cast to ``dtype``.

    Raises:
        ParityError: an unknown generator, or one that gives a different number of batches
            than the case has steps (raised when the shortfall or excess is seen).
    """
    try:
        fn = DATA[case.data.kind]
    except KeyError:
        raise ParityError(
            f"unknown data generator {case.data.kind!r}; expected one of {', '.join(sorted(DATA))}", case=case.name
        ) from None
    rng = np.random.default_rng([case.seed, 1])
    drawn = iter(fn(case, rng, **dict(case.data.args)))
    return _checked(case, drawn, dtype)


def given_batches(case: Case, given: Iterable[Mapping[str, np.ndarray]], dtype: str = "float64") -> Iterator[dict[str, np.ndarray]]:
    """Yield batches given by the caller (``parity diff``: the user's program's) as :func:`iter_batches` does:
    one per step, each a copy, floats cast to ``dtype``, their count checked against the case's steps."""
    return _checked(case, (dict(b) for b in given), dtype)


def _checked(case: Case, drawn: Iterator, dtype: str) -> Iterator[dict[str, np.ndarray]]:
    n = 0
    for batch in drawn:
        if n == case.steps:
            raise ParityError(f"data generator gave more than {case.steps} batches for {case.steps} steps", case=case.name)
        n += 1
        yield as_dtype(batch, dtype)
    if n != case.steps:
        raise ParityError(f"data generator gave {n} batches for {case.steps} steps", case=case.name)


def batches(case: Case, dtype: str = "float64") -> list[dict[str, np.ndarray]]:
    """Return the case's batches, one dict per step, floats cast to ``dtype`` (all in memory)."""
    return list(iter_batches(case, dtype))
