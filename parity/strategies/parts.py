"""One strategy per part of a dense config: shapes, activations, losses, optimizers, ..."""

from __future__ import annotations

import math
from typing import Sequence

from parity.cases.case import DTYPES
from parity.strategies._checks import InvalidArgument, _check_float, _check_int, _check_order, _check_subset, _log_uniform, _need_hypothesis, st
from parity.strategies.config import ACTIVATIONS, CLIPS, LOSSES, OPTIMIZERS, REDUCTIONS, SCHEDULES

def network_shapes(
    *,
    min_depth: int = 1,
    max_depth: int | None = None,
    min_width: int = 1,
    max_width: int | None = None,
    min_outputs: int | None = None,
):
    """Return a strategy for ``widths`` tuples ``(in, h1, ..., out)`` with 1-4 dense layers.

    Args:
        min_depth: fewest dense layers (>= 1).
        max_depth: most dense layers (default ``max(4, min_depth)``).
        min_width: smallest width of any layer.
        max_width: largest width (default ``max(6, min_width)``).
        min_outputs: smallest output width (default ``min_width``; 2 for softmax_xent).
    """
    _need_hypothesis()
    _check_int("min_depth", min_depth, 1)
    max_depth = max(4, min_depth) if max_depth is None else max_depth
    _check_int("max_depth", max_depth, 1)
    _check_order("min_depth", min_depth, "max_depth", max_depth)
    _check_int("min_width", min_width, 1)
    max_width = max(6, min_width) if max_width is None else max_width
    _check_int("max_width", max_width, 1)
    _check_order("min_width", min_width, "max_width", max_width)
    min_outputs = min_width if min_outputs is None else min_outputs
    _check_int("min_outputs", min_outputs, 1)
    _check_order("min_outputs", min_outputs, "max_width", max_width)
    widths = st.integers(min_width, max_width)
    return st.tuples(
        st.lists(widths, min_size=min_depth, max_size=max_depth), st.integers(max(min_width, min_outputs), max_width)
    ).map(lambda t: tuple(t[0]) + (t[1],))


def activations(*, names: Sequence[str] = ACTIVATIONS):
    """Return a strategy for an activation name (shrinks towards the first of ``names``)."""
    _need_hypothesis()
    return st.sampled_from(_check_subset("names", names, ACTIVATIONS))


def losses(*, names: Sequence[str] = LOSSES, reductions: Sequence[str] = REDUCTIONS):
    """Return a strategy for ``(loss, reduction)`` pairs."""
    _need_hypothesis()
    return st.tuples(
        st.sampled_from(_check_subset("names", names, LOSSES)),
        st.sampled_from(_check_subset("reductions", reductions, REDUCTIONS)),
    )


def init_scales(*, min_scale: float = 1e-4, max_scale: float | None = None):
    """Return a strategy for the stddev of the initial weights, log-uniform (tiny ones included).

    Args:
        min_scale: the smallest stddev (> 0; 1e-4 reaches the tiny-gradient regime of P09/P33).
        max_scale: the largest (default ``max(1.0, min_scale)``).
    """
    _need_hypothesis()
    _check_float("min_scale", min_scale, low=0.0, open_low=True)
    max_scale = max(1.0, min_scale) if max_scale is None else max_scale
    _check_float("max_scale", max_scale, low=0.0, open_low=True)
    _check_order("min_scale", min_scale, "max_scale", max_scale)
    return _log_uniform(min_scale, max_scale)


def optimizers(
    *,
    names: Sequence[str] = OPTIMIZERS,
    min_lr: float = 1e-3,
    max_lr: float | None = None,
    min_epsilon: float = 1e-10,
    max_epsilon: float | None = None,
    max_momentum: float = 0.99,
    nesterov: bool | None = None,
):
    """Return a strategy for ``{"name": ..., "lr": ..., hyper-parameters}`` dicts.

    Args:
        names: the optimizers drawn from (shrinks towards the first).
        min_lr: smallest learning rate (> 0).
        max_lr: largest (default ``max(0.5, min_lr)``).
        min_epsilon: smallest Adam / RMSprop epsilon (> 0).
        max_epsilon: largest (default ``max(1e-2, min_epsilon)``; large values make the
            epsilon placement visible, PITFALLS P09).
        max_momentum: largest momentum / beta (< 1).
        nesterov: draw Nesterov momentum (``None``: both).
    """
    _need_hypothesis()
    names = _check_subset("names", names, OPTIMIZERS)
    _check_float("min_lr", min_lr, low=0.0, open_low=True)
    max_lr = max(0.5, min_lr) if max_lr is None else max_lr
    _check_float("max_lr", max_lr, low=0.0, open_low=True)
    _check_order("min_lr", min_lr, "max_lr", max_lr)
    _check_float("min_epsilon", min_epsilon, low=0.0, open_low=True)
    max_epsilon = max(1e-2, min_epsilon) if max_epsilon is None else max_epsilon
    _check_float("max_epsilon", max_epsilon, low=0.0, open_low=True)
    _check_order("min_epsilon", min_epsilon, "max_epsilon", max_epsilon)
    _check_float("max_momentum", max_momentum, low=0.0, high=1.0, open_low=True, open_high=True)
    if nesterov not in (None, True, False):
        raise InvalidArgument(f"nesterov={nesterov!r} must be True, False or None")
    lr = _log_uniform(min_lr, max_lr)
    eps = _log_uniform(min_epsilon, max_epsilon)
    # thousandths: cheaper to draw than floats, shrink to 0, print short
    mom = beta = st.integers(0, math.floor(max_momentum * 1000)).map(lambda k: k / 1000)
    by_name = {
        "sgd": st.fixed_dictionaries({"name": st.just("sgd"), "lr": lr}),
        "momentum": _momentum_dicts(lr, mom, nesterov),
        "adam": st.fixed_dictionaries({"name": st.just("adam"), "lr": lr, "beta1": beta, "beta2": beta, "epsilon": eps}),
        "rmsprop": st.fixed_dictionaries({"name": st.just("rmsprop"), "lr": lr, "decay": beta, "epsilon": eps}),
        "adagrad": st.fixed_dictionaries(
            {"name": st.just("adagrad"), "lr": lr, "initial_accumulator": _log_uniform(1e-3, 1.0)}
        ),
    }
    return st.one_of([by_name[n] for n in names])


def _momentum_dicts(lr, mom, nesterov):
    @st.composite
    def draw(draw_):
        # dependent draw: Nesterov needs a positive momentum
        use_nesterov = draw_(st.booleans()) if nesterov is None else nesterov
        m = draw_(mom)
        if use_nesterov and m == 0.0:
            m = 0.5
        return {"name": "momentum", "lr": draw_(lr), "momentum": m, "nesterov": use_nesterov}

    return draw()


def schedules(*, kinds: Sequence[str] = SCHEDULES, max_decay_steps: int = 6, staircase: bool | None = None):
    """Return a strategy for learning-rate schedules (constant, polynomial or exponential decay).

    Args:
        kinds: the schedule kinds drawn from (shrinks towards the first).
        max_decay_steps: the largest ``decay_steps`` (>= 1).
        staircase: exponential decay's ``staircase`` (``None``: both).
    """
    _need_hypothesis()
    kinds = _check_subset("kinds", kinds, SCHEDULES)
    _check_int("max_decay_steps", max_decay_steps, 1)
    if staircase not in (None, True, False):
        raise InvalidArgument(f"staircase={staircase!r} must be True, False or None")
    steps = st.integers(1, max_decay_steps)
    by_kind = {
        "constant": st.just({"kind": "constant"}),
        "polynomial": st.fixed_dictionaries(
            {
                "kind": st.just("polynomial"),
                "decay_steps": steps,
                "end": st.sampled_from((1e-4, 0.0, 1e-3)),
                "power": st.sampled_from((1.0, 0.5, 0.9, 2.0)),
            }
        ),
        "exponential": st.fixed_dictionaries(
            {
                "kind": st.just("exponential"),
                "decay_steps": steps,
                "rate": st.sampled_from((0.5, 0.1, 0.9, 0.96)),
                "staircase": st.booleans() if staircase is None else st.just(staircase),
            }
        ),
    }
    return st.one_of([by_kind[k] for k in kinds])


def clips(*, kinds: Sequence[str] = CLIPS, min_limit: float = 1e-3, max_limit: float | None = None, allow_none: bool = True):
    """Return a strategy for gradient clipping: ``{"kind", "limit"}`` or ``None`` (no clipping).

    Args:
        kinds: ``value`` (tf.clip_by_value), ``norm`` (tf.clip_by_norm per tensor) and
            ``global_norm`` (tf.clip_by_global_norm).
        min_limit: smallest threshold (> 0).
        max_limit: largest (default ``max(10.0, min_limit)``).
        allow_none: also draw ``None`` (shrinks to it).
    """
    _need_hypothesis()
    kinds = _check_subset("kinds", kinds, CLIPS)
    _check_float("min_limit", min_limit, low=0.0, open_low=True)
    max_limit = max(10.0, min_limit) if max_limit is None else max_limit
    _check_float("max_limit", max_limit, low=0.0, open_low=True)
    _check_order("min_limit", min_limit, "max_limit", max_limit)
    some = st.fixed_dictionaries({"kind": st.sampled_from(kinds), "limit": _log_uniform(min_limit, max_limit)})
    return st.none() | some if allow_none else some


def max_norms(*, min_radius: float = 1e-2, max_radius: float | None = None, axes: Sequence[int] = (0, 1), allow_none: bool = True):
    """Return a strategy for max-norm constraints ``{"radius", "axis"}`` (or ``None``).

    ``axis`` is the one ``tf.clip_by_norm(kernel, radius, axes=[axis])`` reduces over, on the
    canonical ``[in, out]`` kernel (seed 002 uses ``axes=1``).
    """
    _need_hypothesis()
    _check_float("min_radius", min_radius, low=0.0, open_low=True)
    max_radius = max(2.0, min_radius) if max_radius is None else max_radius
    _check_float("max_radius", max_radius, low=0.0, open_low=True)
    _check_order("min_radius", min_radius, "max_radius", max_radius)
    if isinstance(axes, (str, bytes)) or not axes or any(a not in (0, 1) for a in axes):
        raise InvalidArgument(f"axes={axes!r} must be a non-empty tuple of 0 and/or 1")
    some = st.fixed_dictionaries({"radius": _log_uniform(min_radius, max_radius), "axis": st.sampled_from(tuple(axes))})
    return st.none() | some if allow_none else some


def dtypes(*, names: Sequence[str] = DTYPES):
    """Return a strategy for dtype names ("float64", "float32")."""
    _need_hypothesis()
    return st.sampled_from(_check_subset("names", names, DTYPES))

