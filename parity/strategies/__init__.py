"""Hypothesis strategies for property-testing ports, and the ``dense`` case they describe.

A *dense config* is a plain dict (JSON-like, printable as a Python literal, so a failure
replays from one line) describing a fully connected network and how it trains::

    {"widths": (3, 4, 2), "activation": "tanh", "init_scale": 0.1,
     "batch": 4, "data_scale": 1.0, "loss": "mse", "reduction": "mean",
     "optimizer": {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
     "schedule": {"kind": "constant"}, "clip": None, "max_norm": None,
     "steps": 2, "seed": 0}

:func:`dense_case` turns it into a :class:`~parity.cases.case.Case` of module ``"dense"``
(``tf_impl/v1/dense.py``, ``tf_impl/v2/dense.py``, ``torch_impl/dense.py``,
``parity/oracle/dense.py``). The strategies draw configs, or their parts:

* :func:`network_shapes` -- ``widths`` tuples (depth 1-4);
* :func:`activations`, :func:`init_scales` (tiny ones included), :func:`losses`;
* :func:`optimizers` -- ``{"name": ..., hyper-parameters}``;
* :func:`schedules` -- constant, polynomial decay, exponential decay;
* :func:`clips` -- clip by value, by norm (per tensor), by global norm, or ``None``;
* :func:`max_norms` -- ``{"radius", "axis"}`` or ``None``;
* :func:`dtypes`;
* :func:`dense_configs` -- a whole config (and :func:`dense_cases`, the same as Cases).

Bounds are keyword-only ``min_*`` / ``max_*`` with defaults that depend on each other,
checked when the strategy is built (a bad bound raises
:class:`hypothesis.errors.InvalidArgument` at once, not at draw time). Every strategy
shrinks towards the simplest configuration: the smallest network, plain SGD, a constant
learning rate, no clipping, one step.

Hypothesis is a test dependency: :func:`dense_case` works without it, the strategies
raise a clear :class:`~parity.errors.ParityError` when it is missing.

The package: ``config`` (configs and the ``dense`` Case, numpy only), ``parts`` (one
strategy per part of a config), ``dense`` (whole configs and Cases) and ``_checks``
(the hypothesis import and the eager argument checks).
"""

from __future__ import annotations

from parity.strategies.config import (
    ACTIVATIONS,
    CLIPS,
    COVERING_STRUCTURES,
    DEFAULT_HYPER,
    LOSSES,
    OPTIMIZERS,
    REDUCTIONS,
    SCHEDULES,
    dense_case,
    learning_rate,
    normalize_config,
    structure_of,
)
from parity.strategies.dense import dense_cases, dense_configs
from parity.strategies.parts import activations, clips, dtypes, init_scales, losses, max_norms, network_shapes, optimizers, schedules

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "REDUCTIONS",
    "OPTIMIZERS",
    "SCHEDULES",
    "CLIPS",
    "DEFAULT_HYPER",
    "COVERING_STRUCTURES",
    "dense_case",
    "normalize_config",
    "structure_of",
    "learning_rate",
    "network_shapes",
    "activations",
    "init_scales",
    "losses",
    "optimizers",
    "schedules",
    "clips",
    "max_norms",
    "dtypes",
    "dense_configs",
    "dense_cases",
]
