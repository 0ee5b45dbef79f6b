"""The per-step series the pictures need, as JSON: health per port, error map per comparison.

* :func:`health_series` — per port: loss and learning rate per step, and per layer the
  gradient norm and the update/weight ratio per step (what seed 000's vanishing first layer
  and seed 001's unmoving filters look like). Read from a streamed run's ``window.health``
  (the runner tracks it step by step) or, for an in-memory trace, computed from its steps.
* :func:`error_map` — per comparison: the worst error in units of its bound, per stage and
  step (``Comparison.series``; for an in-memory comparison, from its diffs).

Both are downsampled to at most ``MAX_POINTS`` steps (the worst of each bucket for the map,
every k-th step for the curves), so a 10,000-step run keeps a report of the same size.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from parity.trace.memory import STAGES

__all__ = ["health_series", "error_map", "MAX_POINTS"]

MAX_POINTS = 500


def _plain(values) -> list:
    out = []
    for v in np.asarray(values, dtype=np.float64).ravel().tolist():
        out.append(v if math.isfinite(v) else (None if math.isnan(v) else ("inf" if v > 0 else "-inf")))
    return out


def _thin(values, every: int) -> list:
    return _plain(np.asarray(values, dtype=np.float64)[::every]) if every > 1 else _plain(values)


def _health_of(trace):
    health = getattr(trace, "health", None)
    if health is not None:
        return health
    try:
        from parity.trace.health import HealthTracker

        tracker = HealthTracker(getattr(trace, "initial", None))
        for i in range(len(trace.steps)):
            tracker.add(trace.steps[i])
        return tracker.result()
    except Exception:  # noqa: BLE001 -- a trace without gradients has no health: no curves, not a failure
        return None


def health_series(traces: Mapping) -> dict:
    """``{port: {"every": k, "loss": [...], "learning_rate": [...], "layers": {name: {...}}}}``."""
    out = {}
    for port, trace in traces.items():
        h = _health_of(trace)
        if h is None:
            continue
        n = max([len(h.loss)] + [len(layer.grad_norm) for layer in h.layers])
        every = max(1, math.ceil(n / MAX_POINTS))
        entry = {"every": every, "loss": _thin(h.loss, every), "learning_rate": _thin(h.lr, every), "layers": {}}
        for layer in h.layers:
            entry["layers"][layer.name] = {
                "grad_norm": _thin(layer.grad_norm, every),
                "update_ratio": _thin(layer.update_ratio, every),
            }
        if any(v is not None for v in entry["loss"]) or entry["layers"]:
            out[port] = entry
    return out


def error_map(comparison) -> dict:
    """``{"every": k, "stages": [...], "units": [[per step] per stage]}``: the worst units per cell."""
    series = getattr(comparison, "series", None)
    rows: dict[str, np.ndarray] = {}
    if series:
        rows = {s: np.asarray(series[s], dtype=np.float64) for s in STAGES if s in series}
    else:
        n = comparison.steps
        for d in comparison.diffs:
            row = rows.setdefault(d.stage, np.full(n, np.nan))
            if d.step < n:
                u = d.units
                row[d.step] = u if np.isnan(row[d.step]) else max(row[d.step], u)
        rows = {s: rows[s] for s in STAGES if s in rows}
    if not rows:
        return {"every": 1, "stages": [], "units": []}
    n = max(len(r) for r in rows.values())
    every = max(1, math.ceil(n / MAX_POINTS))
    units = []
    for s, r in rows.items():
        r = np.pad(r, (0, n - len(r)), constant_values=np.nan)
        if every > 1:
            m = math.ceil(n / every)
            padded = np.pad(r, (0, m * every - n), constant_values=np.nan).reshape(m, every)
            with np.errstate(all="ignore"):
                r = np.where(np.all(np.isnan(padded), axis=1), np.nan, np.nanmax(np.where(np.isnan(padded), -np.inf, padded), axis=1))
        units.append(_plain(r))
    return {"every": every, "stages": list(rows), "units": units}
