"""Hypothesis strategies for property-testing ports, and the ``dense`` case they describe.

A *dense config* is a plain dict (JSON-like, printable as a Python literal, so a failure
replays from one line) describing a fully connected network and how it trains::

    {"widths": (3, 4, 2), "activation": "tanh", "init_scale": 0.1,
     "batch": 4, "data_scale": 1.0, "loss": "mse", "reduction": "mean",
     "optimizer": {"name": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
     "schedule": {"kind": "constant"}, "clip": None, "max_norm": None,
     "steps": 2, "seed": 0}

:func:`dense_case` turns it into a :class:`~parity.cases.Case` of module ``"dense"``
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
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping, Sequence

import numpy as np

from .cases import DTYPES, Case, Cost, Data, Init
from .data import register_data
from .errors import ParityError

try:  # hypothesis is a test dependency; dense_case() works without it
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError:  # pragma: no cover - exercised only without the test extra
    st = None

    class InvalidArgument(ParityError):  # type: ignore[no-redef]
        """Stand-in so that ``except InvalidArgument`` works without hypothesis."""

        def __init__(self, message: str):
            super().__init__(message)


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

ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")
LOSSES = ("mse", "softmax_xent")
REDUCTIONS = ("mean", "sum")
OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad")
SCHEDULES = ("constant", "polynomial", "exponential")
CLIPS = ("value", "norm", "global_norm")

#: Hyper-parameters each optimizer reads, with TF1's defaults (the right ports follow TF1).
DEFAULT_HYPER: dict[str, dict[str, Any]] = {
    "sgd": {},
    "momentum": {"momentum": 0.9, "nesterov": False},
    "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
    "rmsprop": {"decay": 0.9, "epsilon": 1e-10},
    "adagrad": {"initial_accumulator": 0.1},
}
_SCHEDULE_KEYS = {
    "constant": {},
    "polynomial": {"decay_steps": 4, "end": 1e-4, "power": 1.0},
    "exponential": {"decay_steps": 4, "rate": 0.5, "staircase": False},
}
_TOP_DEFAULTS = {
    "activation": "relu",
    "init_scale": 0.1,
    "batch": 4,
    "data_scale": 1.0,
    "loss": "mse",
    "reduction": "mean",
    "optimizer": {"name": "sgd", "lr": 0.1},
    "schedule": {"kind": "constant"},
    "clip": None,
    "max_norm": None,
    "steps": 1,
    "seed": 0,
}


#: The fields of a *structure*: everything that changes a TF graph or traced function
#: (the rest of a config -- learning rate, hyper-parameters, clip limit, max-norm radius,
#: init scale, batch, data, steps, seed -- is fed). ``optimizer`` is a name, ``schedule``
#: a kind, ``clip`` a kind or None, ``max_norm`` an axis or None.
_STRUCTURE_KEYS = (
    "widths", "activation", "loss", "reduction", "optimizer", "nesterov", "schedule", "staircase", "clip", "max_norm",
)

#: Six structures in which every activation, loss, reduction, optimizer (with and without
#: Nesterov), schedule kind (with and without staircase), clip kind (and none) and
#: max-norm axis (and none) occurs, at depths 1-3: ``dense_configs(structures=...)`` with
#: these builds six TF graphs and reuses them for every example (the ``ci`` profile).
COVERING_STRUCTURES: tuple[dict[str, Any], ...] = (
    {"widths": (3, 4, 2), "activation": "relu", "loss": "mse", "reduction": "mean", "optimizer": "sgd",
     "nesterov": False, "schedule": "constant", "staircase": False, "clip": "value", "max_norm": None},
    {"widths": (2, 3, 3, 2), "activation": "tanh", "loss": "softmax_xent", "reduction": "sum", "optimizer": "momentum",
     "nesterov": False, "schedule": "polynomial", "staircase": False, "clip": "global_norm", "max_norm": 1},
    {"widths": (4, 3), "activation": "linear", "loss": "mse", "reduction": "sum", "optimizer": "momentum",
     "nesterov": True, "schedule": "exponential", "staircase": True, "clip": "norm", "max_norm": 0},
    {"widths": (3, 4, 2), "activation": "sigmoid", "loss": "softmax_xent", "reduction": "mean", "optimizer": "adam",
     "nesterov": False, "schedule": "exponential", "staircase": False, "clip": None, "max_norm": 1},
    {"widths": (2, 4, 3), "activation": "relu", "loss": "mse", "reduction": "mean", "optimizer": "rmsprop",
     "nesterov": False, "schedule": "polynomial", "staircase": False, "clip": "norm", "max_norm": None},
    {"widths": (3, 2, 2), "activation": "tanh", "loss": "softmax_xent", "reduction": "mean", "optimizer": "adagrad",
     "nesterov": False, "schedule": "constant", "staircase": False, "clip": "global_norm", "max_norm": 0},
)


# ---------------------------------------------------------------------------------------
# configs -> Case (numpy only)


def _fail(message: str):
    raise ParityError(f"dense config: {message}")


def _choice(value, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        _fail(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _positive(value, what: str, *, allow_zero: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        _fail(f"{what} must be a number, not {value!r}")
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        _fail(f"{what} must be {'>= 0' if allow_zero else '> 0'} and finite, not {value!r}")
    return x


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Check a dense config and return it with every default filled in.

    Raises:
        ParityError: an unknown key, a missing ``widths``, or a value out of range.
    """
    unknown = set(config) - set(_TOP_DEFAULTS) - {"widths"}
    if unknown:
        _fail(f"unknown key(s) {', '.join(sorted(unknown))}; expected widths, {', '.join(_TOP_DEFAULTS)}")
    if "widths" not in config:
        _fail("'widths' (in, hidden..., out) is required")
    out = dict(_TOP_DEFAULTS)
    out.update(config)
    widths = tuple(int(w) for w in out["widths"])
    if len(widths) < 2 or min(widths) < 1:
        _fail(f"widths must list at least (in, out), each >= 1, not {out['widths']!r}")
    out["widths"] = widths
    _choice(out["activation"], ACTIVATIONS, "activation")
    _choice(out["loss"], LOSSES, "loss")
    _choice(out["reduction"], REDUCTIONS, "reduction")
    if out["loss"] == "softmax_xent" and widths[-1] < 2:
        _fail("softmax_xent needs at least 2 outputs")
    out["init_scale"] = _positive(out["init_scale"], "init_scale")
    out["data_scale"] = _positive(out["data_scale"], "data_scale")
    for key in ("batch", "steps"):
        if int(out[key]) != out[key] or int(out[key]) < (1 if key == "batch" else 0):
            _fail(f"{key} must be a {'positive' if key == 'batch' else 'non-negative'} integer, not {out[key]!r}")
        out[key] = int(out[key])
    out["seed"] = int(out["seed"])

    opt = dict(out["optimizer"])
    name = _choice(opt.pop("name", None), OPTIMIZERS, "optimizer name")
    hyper = {"name": name, "lr": _positive(opt.pop("lr", 0.1), "optimizer lr")}
    for key, default in DEFAULT_HYPER[name].items():
        hyper[key] = opt.pop(key, default)
    if opt:
        _fail(f"optimizer {name!r} does not take {', '.join(sorted(opt))}")
    if name == "momentum":
        hyper["momentum"] = _positive(hyper["momentum"], "momentum", allow_zero=True)
        hyper["nesterov"] = bool(hyper["nesterov"])
        if hyper["nesterov"] and hyper["momentum"] == 0:
            _fail("nesterov needs momentum > 0")
    for key in ("beta1", "beta2", "decay"):
        if key in hyper and not 0 <= float(hyper[key]) < 1:
            _fail(f"{key} must be in [0, 1), not {hyper[key]!r}")
    for key in ("epsilon", "initial_accumulator"):
        if key in hyper:
            hyper[key] = _positive(hyper[key], key)
    out["optimizer"] = hyper

    sched = dict(out["schedule"])
    kind = _choice(sched.pop("kind", None), SCHEDULES, "schedule kind")
    norm_sched = {"kind": kind}
    for key, default in _SCHEDULE_KEYS[kind].items():
        norm_sched[key] = sched.pop(key, default)
    if sched:
        _fail(f"schedule {kind!r} does not take {', '.join(sorted(sched))}")
    if kind != "constant":
        if int(norm_sched["decay_steps"]) < 1:
            _fail("decay_steps must be >= 1")
        norm_sched["decay_steps"] = int(norm_sched["decay_steps"])
    out["schedule"] = norm_sched

    if out["clip"] is not None:
        clip = dict(out["clip"])
        out["clip"] = {"kind": _choice(clip.get("kind"), CLIPS, "clip kind"), "limit": _positive(clip.get("limit"), "clip limit")}
    if out["max_norm"] is not None:
        mn = dict(out["max_norm"])
        if mn.get("axis") not in (0, 1):
            _fail(f"max_norm axis must be 0 or 1 (of the [in, out] kernel), not {mn.get('axis')!r}")
        out["max_norm"] = {"radius": _positive(mn.get("radius"), "max_norm radius"), "axis": int(mn["axis"])}
    return out


def learning_rate(config: Mapping[str, Any], step: int) -> float:
    """Return the learning rate update ``step`` (0-based) uses, as TF1's schedules compute it."""
    lr, s = config["optimizer"]["lr"], config["schedule"]
    if s["kind"] == "polynomial":
        p = min(step, s["decay_steps"]) / s["decay_steps"]
        return (lr - s["end"]) * (1 - p) ** s["power"] + s["end"]
    if s["kind"] == "exponential":
        e = step / s["decay_steps"]
        return lr * s["rate"] ** (math.floor(e) if s["staircase"] else e)
    return lr


def structure_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the structure of a config: the fields that change a TF graph (see :data:`COVERING_STRUCTURES`)."""
    cfg = normalize_config(config)
    opt, sched = cfg["optimizer"], cfg["schedule"]
    return {
        "widths": cfg["widths"],
        "activation": cfg["activation"],
        "loss": cfg["loss"],
        "reduction": cfg["reduction"],
        "optimizer": opt["name"],
        "nesterov": bool(opt.get("nesterov", False)),
        "schedule": sched["kind"],
        "staircase": bool(sched.get("staircase", False)),
        "clip": cfg["clip"]["kind"] if cfg["clip"] else None,
        "max_norm": cfg["max_norm"]["axis"] if cfg["max_norm"] else None,
    }


def dense_case(config: Mapping[str, Any], *, ports: Sequence[str] = ("tf1", "tf2", "torch", "numpy"), name: str | None = None) -> Case:
    """Turn a dense config into a :class:`~parity.cases.Case` of module ``"dense"``.

    Parameters are ``dense{i}/kernel`` ``[in, out]`` and ``dense{i}/bias``, drawn from
    ``random_normal(0, init_scale)``. Each step feeds a fresh batch ``x`` (normal, stddev
    ``data_scale``) and ``y`` (normal targets for mse, one-hot labels for softmax_xent).

    Args:
        config: a dense config (see the module docstring); missing keys take defaults.
        ports: the ports to compare (``framework[:variant]``).
        name: the case name (default: ``dense-`` and a digest of the config).

    Raises:
        ParityError: the config is invalid.
    """
    cfg = normalize_config(config)
    widths = cfg["widths"]
    if name is None:
        name = "dense-" + hashlib.sha1(repr(sorted(cfg.items())).encode()).hexdigest()[:10]
    params: dict[str, Init] = {}
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        params[f"dense{i}/kernel"] = Init((n_in, n_out), "random_normal", {"stddev": cfg["init_scale"]})
        params[f"dense{i}/bias"] = Init((n_out,), "random_normal", {"stddev": cfg["init_scale"]})
    data = Data(
        "dense",
        {"batch": cfg["batch"], "n_in": widths[0], "n_out": widths[-1], "loss": cfg["loss"], "scale": cfg["data_scale"]},
    )
    return Case(
        name=name,
        module="dense",
        title=f"dense {'-'.join(map(str, widths))} {cfg['activation']}, {cfg['optimizer']['name']}",
        ports=tuple(ports),
        params=params,
        data=data,
        steps=cfg["steps"],
        options=cfg,
        seed=cfg["seed"],
        cost=Cost(depth=len(widths) - 1, reduction=max(max(widths), cfg["batch"])),
        tags=("dense", "property"),
    )


@register_data("dense")
def _dense_batches(case: Case, rng: np.random.Generator, *, batch: int, n_in: int, n_out: int, loss: str, scale: float):
    """A fresh batch per step: ``x`` ~ N(0, scale^2); ``y`` normal (mse) or one-hot (softmax_xent)."""
    out = []
    for _ in range(case.steps):
        x = rng.normal(0.0, scale, size=(batch, n_in))
        if loss == "softmax_xent":
            y = np.eye(n_out)[rng.integers(0, n_out, size=batch)]
        else:
            y = rng.normal(0.0, 1.0, size=(batch, n_out))
        out.append({"x": x, "y": y})
    return out


# ---------------------------------------------------------------------------------------
# strategies (hypothesis)


def _need_hypothesis() -> None:
    if st is None:
        raise ParityError("parity.strategies needs hypothesis: pip install 'parity[test]' (or pip install hypothesis)")


def _check_int(name: str, value, low: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if low is not None and value < low:
        raise InvalidArgument(f"{name}={value!r} must be >= {low}")


def _check_float(name: str, value, *, low: float | None = None, high: float | None = None, open_low=False, open_high=False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{name}={value!r} must be a finite number")
    if low is not None and (value < low or (open_low and value == low)):
        raise InvalidArgument(f"{name}={value!r} must be {'>' if open_low else '>='} {low}")
    if high is not None and (value > high or (open_high and value == high)):
        raise InvalidArgument(f"{name}={value!r} must be {'<' if open_high else '<='} {high}")


def _check_order(lo_name: str, lo, hi_name: str, hi) -> None:
    if lo > hi:
        raise InvalidArgument(f"{lo_name}={lo!r} must be <= {hi_name}={hi!r}")


def _check_subset(name: str, values, allowed: Sequence[str]) -> tuple:
    if isinstance(values, str) or not isinstance(values, (tuple, list)):
        raise InvalidArgument(f"{name}={values!r} must be a tuple of names from {allowed}")
    values = tuple(values)
    if not values:
        raise InvalidArgument(f"{name} must not be empty")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidArgument(f"{name}: unknown {', '.join(map(repr, bad))}; expected some of {allowed}")
    return values


def _log_uniform(low: float, high: float):
    """Return floats in [low, high], log-uniform on a grid of 100 steps per decade, 3 significant digits."""
    if low == high:
        return st.just(float(low))
    lo, hi = math.ceil(math.log10(low) * 100), math.floor(math.log10(high) * 100)
    if lo > hi:  # no grid point inside: the ends only
        return st.sampled_from((float(low), float(high)))
    # An integer exponent (in hundredths of a decade) is ~10x cheaper to draw than a
    # float, and shrinks towards 0 (x = 1) when it is in range, else towards the end
    # nearer 1; rounding keeps printed (shrunk) configs short.
    return st.integers(lo, hi).map(lambda k: float(f"{min(max(10.0 ** (k / 100), low), high):.3g}"))


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


def dense_configs(
    *,
    shapes=None,
    activation=None,
    init_scale=None,
    loss=None,
    optimizer=None,
    schedule=None,
    clip=None,
    max_norm=None,
    min_batch: int = 1,
    max_batch: int | None = None,
    min_steps: int = 1,
    max_steps: int | None = None,
    min_data_scale: float = 0.1,
    max_data_scale: float | None = None,
    structures: Sequence[Mapping[str, Any]] | None = None,
):
    """Return a strategy for whole dense configs (dicts that :func:`dense_case` accepts).

    Each part is a strategy (default: the strategy of the same plural name with its
    defaults), so ``dense_configs(optimizer=optimizers(names=("adam",)))`` draws Adam only.

    Args:
        shapes: strategy for ``widths`` (default :func:`network_shapes`).
        activation, init_scale, loss, optimizer, schedule, clip, max_norm: strategies
            for those parts (``loss`` draws ``(loss, reduction)`` pairs).
        min_batch, max_batch: batch size bounds (default max ``max(8, min_batch)``).
        min_steps, max_steps: training steps (default max ``max(3, min_steps)``).
        min_data_scale, max_data_scale: stddev of the inputs (default max ``max(2.0, min)``).
        structures: draw only these structures (dicts as :func:`structure_of` returns,
            e.g. :data:`COVERING_STRUCTURES`; shrinks towards the first), with every fed
            number still drawn: at most ``len(structures)`` TF graphs get built. Fixes the
            parts ``shapes`` ... ``max_norm`` name, so it excludes them (``init_scale`` aside).
    """
    _need_hypothesis()
    if structures is not None:
        fixed = {"shapes": shapes, "activation": activation, "loss": loss, "optimizer": optimizer,
                 "schedule": schedule, "clip": clip, "max_norm": max_norm}
        given_parts = [k for k, v in fixed.items() if v is not None]
        if given_parts:
            raise InvalidArgument(f"structures fixes {', '.join(given_parts)}: pass one or the other")
        common = dict(init_scale=init_scale, min_batch=min_batch, max_batch=max_batch, min_steps=min_steps,
                      max_steps=max_steps, min_data_scale=min_data_scale, max_data_scale=max_data_scale)
        return st.one_of([_one_structure(s, common) for s in _check_structures(structures)])
    _check_int("min_batch", min_batch, 1)
    max_batch = max(8, min_batch) if max_batch is None else max_batch
    _check_int("max_batch", max_batch, 1)
    _check_order("min_batch", min_batch, "max_batch", max_batch)
    _check_int("min_steps", min_steps, 1)
    max_steps = max(3, min_steps) if max_steps is None else max_steps
    _check_int("max_steps", max_steps, 1)
    _check_order("min_steps", min_steps, "max_steps", max_steps)
    _check_float("min_data_scale", min_data_scale, low=0.0, open_low=True)
    max_data_scale = max(2.0, min_data_scale) if max_data_scale is None else max_data_scale
    _check_float("max_data_scale", max_data_scale, low=0.0, open_low=True)
    _check_order("min_data_scale", min_data_scale, "max_data_scale", max_data_scale)
    parts = {
        "widths": shapes if shapes is not None else network_shapes(),
        "activation": activation if activation is not None else activations(),
        "init_scale": init_scale if init_scale is not None else init_scales(),
        "loss": loss if loss is not None else losses(),
        "optimizer": optimizer if optimizer is not None else optimizers(),
        "schedule": schedule if schedule is not None else schedules(),
        "clip": clip if clip is not None else clips(),
        "max_norm": max_norm if max_norm is not None else max_norms(),
    }
    for key, value in parts.items():
        if not isinstance(value, st.SearchStrategy):
            raise InvalidArgument(f"{key}={value!r} must be a hypothesis strategy")
    batch = st.integers(min_batch, max_batch)
    steps = st.integers(min_steps, max_steps)
    data_scale = _log_uniform(min_data_scale, max_data_scale)

    @st.composite
    def draw(draw_):
        # dependent draw: softmax_xent needs >= 2 outputs
        loss_name, reduction = draw_(parts["loss"])
        widths = draw_(parts["widths"])
        if loss_name == "softmax_xent" and widths[-1] < 2:
            widths = widths[:-1] + (2,)
        return {
            "widths": widths,
            "activation": draw_(parts["activation"]),
            "init_scale": draw_(parts["init_scale"]),
            "batch": draw_(batch),
            "data_scale": draw_(data_scale),
            "loss": loss_name,
            "reduction": reduction,
            "optimizer": draw_(parts["optimizer"]),
            "schedule": draw_(parts["schedule"]),
            "clip": draw_(parts["clip"]),
            "max_norm": draw_(parts["max_norm"]),
            "steps": draw_(steps),
            "seed": draw_(st.integers(0, 2**16)),
        }

    return draw()


def _check_structures(structures) -> list[dict[str, Any]]:
    if isinstance(structures, Mapping) or not isinstance(structures, (tuple, list)) or not structures:
        raise InvalidArgument(f"structures={structures!r} must be a non-empty list of structure dicts")
    out = []
    for s in structures:
        if not isinstance(s, Mapping) or set(s) != set(_STRUCTURE_KEYS):
            raise InvalidArgument(f"structure {s!r} must have exactly the keys {', '.join(_STRUCTURE_KEYS)}")
        config = {
            "widths": s["widths"], "activation": s["activation"], "loss": s["loss"], "reduction": s["reduction"],
            "optimizer": {"name": s["optimizer"], **({"nesterov": s["nesterov"], "momentum": 0.5} if s["optimizer"] == "momentum" else {})},
            "schedule": {"kind": s["schedule"], **({"staircase": s["staircase"]} if s["schedule"] == "exponential" else {})},
            "clip": None if s["clip"] is None else {"kind": s["clip"], "limit": 1.0},
            "max_norm": None if s["max_norm"] is None else {"radius": 1.0, "axis": s["max_norm"]},
        }
        try:
            normalized = structure_of(config)
        except ParityError as exc:
            raise InvalidArgument(f"structure {s!r}: {exc}") from None
        if normalized != dict(s, widths=tuple(s["widths"])):
            raise InvalidArgument(f"structure {s!r}: nesterov / staircase set where they do not apply")
        out.append(normalized)
    return out


def _one_structure(s: Mapping[str, Any], common: Mapping[str, Any]):
    opt = optimizers(names=(s["optimizer"],), nesterov=s["nesterov"] if s["optimizer"] == "momentum" else None)
    return dense_configs(
        shapes=st.just(s["widths"]),
        activation=st.just(s["activation"]),
        loss=st.just((s["loss"], s["reduction"])),
        optimizer=opt,
        schedule=schedules(kinds=(s["schedule"],), staircase=s["staircase"] if s["schedule"] == "exponential" else None),
        clip=st.none() if s["clip"] is None else clips(kinds=(s["clip"],), allow_none=False),
        max_norm=st.none() if s["max_norm"] is None else max_norms(axes=(s["max_norm"],), allow_none=False),
        **common,
    )


def dense_cases(*, ports: Sequence[str] = ("tf1", "tf2", "torch", "numpy"), **kwargs):
    """Return a strategy for dense :class:`~parity.cases.Case` objects (``dense_configs(**kwargs)``)."""
    return dense_configs(**kwargs).map(lambda cfg: dense_case(cfg, ports=ports))
