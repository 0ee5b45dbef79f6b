"""Gradient health from a trace: per layer and step, gradient norm and variance, update/weight ratio.

Computed in numpy from any port's trace ("gradients" and "parameters" stages), so the
same numbers come out for every framework: seed 000's vanishing-gradient diagnosis and
seed 001's "the first layer does not change" are measured, not quoted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .trace import Trace

__all__ = ["LayerHealth", "layer_health", "summarize", "ratio", "summary_dir"]


@dataclass(frozen=True)
class LayerHealth:
    """One variable's gradient statistics over a run (one value per step)."""

    name: str
    grad_norm: np.ndarray  # ||g_t||
    grad_var: np.ndarray  # variance of g_t's elements
    update_ratio: np.ndarray  # ||w_{t+1} - w_t|| / ||w_t|| (inf where w_t = 0)

    def mean(self, field: str) -> float:
        """The mean over steps of one statistic (finite values only)."""
        v = getattr(self, field)
        v = v[np.isfinite(v)]
        return float(v.mean()) if v.size else float("nan")


def layer_health(trace: Trace, stage: str = "gradients") -> list[LayerHealth]:
    """Return per-variable health over the steps of ``trace``, in the port's variable order."""
    if not trace.steps or stage not in trace.steps[0]:
        return []
    out = []
    for name in trace.steps[0][stage]:
        grads = [np.asarray(s[stage][name], dtype=np.float64) for s in trace.steps]
        norms = np.array([np.sqrt(np.sum(g * g)) for g in grads])
        var = np.array([np.var(g) for g in grads])
        ratios = []
        prev = trace.initial.get(name)
        for s in trace.steps:
            cur = s.get("constrained", {}).get(name, s.get("parameters", {}).get(name))
            if prev is None or cur is None:
                ratios.append(np.nan)
            else:
                p, c = np.asarray(prev, np.float64), np.asarray(cur, np.float64)
                base = np.sqrt(np.sum(p * p))
                delta = np.sqrt(np.sum((c - p) ** 2))
                ratios.append(delta / base if base > 0 else (np.inf if delta > 0 else 0.0))
            prev = cur
        out.append(LayerHealth(name, norms, var, np.array(ratios)))
    return out


def summarize(trace: Trace) -> dict[str, dict[str, float]]:
    """Return {variable: {grad_norm, grad_var, update_ratio}} means over the run."""
    return {h.name: {f: h.mean(f) for f in ("grad_norm", "grad_var", "update_ratio")} for h in layer_health(trace)}


def ratio(a: float, b: float) -> float:
    """``a / b``, or inf when b is 0."""
    return a / b if b else float("inf")


def summary_dir(case, port: str, dtype: str) -> str | None:
    """Return where a port writes TensorBoard histograms: ``$PARITY_SUMMARY_DIR/<case>/<port>-<dtype>``.

    None when ``PARITY_SUMMARY_DIR`` is unset (no summaries). The seed 000 answer diagnosed
    its vanishing gradients with histograms of every variable and gradient; the encoder
    ports write the same ones, so TensorBoard shows both frameworks side by side.
    """
    import os

    root = os.environ.get("PARITY_SUMMARY_DIR")
    return os.path.join(root, case.name, f"{port}-{dtype}") if root else None
