"""Dense configs (plain dicts) and the ``dense`` Case they describe; numpy only.

See :mod:`parity.strategies` for the shape of a config.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping, Sequence

import numpy as np

from parity.cases.case import Case, Cost, Data, Init
from parity.cases.data import register_data
from parity.errors import ParityError

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
    """Turn a dense config into a :class:`~parity.cases.case.Case` of module ``"dense"``.

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
