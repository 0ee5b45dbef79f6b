"""Gradient health: per layer and step, gradient norm and variance, update/weight ratio; loss and lr.

Computed in numpy from any port's steps ("gradients", "parameters", "constrained",
"loss", "learning_rate" stages), so the same numbers come out for every framework: seed
000's vanishing-gradient diagnosis and seed 001's "the first layer does not change" are
measured, not quoted. :class:`HealthTracker` takes the steps as they arrive (the runner
feeds it, then drops the step); :func:`layer_health` reads a streamed run's
:class:`Health` or, for an in-memory trace, tracks its steps.

Norms and variances come from the float64 sums a tensor's summary holds
(:func:`parity.trace.summary.norm_mean`: the same sums over chunks as :func:`~parity.trace.summary.summarize`,
never a float64 copy of a whole tensor, without the checksum and samples the tracker does not read): the variance from the norm and
the mean where that is exact to 1e-12 (:data:`ONE_PASS_LIMIT`), else in numpy's two-pass
form. The update ratio's differences are taken in float64, chunk by chunk. The tracker
keeps the previous step's parameter arrays themselves (copies the boundary made; nothing
writes to them) and their norm.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field

import numpy as np

from parity.trace.summary import MEMO_MIN, Summary, float64_chunks, norm_mean, scratch, sum_of_squares

__all__ = ["LayerHealth", "Health", "HealthTracker", "layer_health", "summarize", "ratio", "summary_dir"]


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


@dataclass
class Health:
    """The health series of one run: per layer (in the port's order), and loss and lr per step."""

    layers: list[LayerHealth] = field(default_factory=list)
    loss: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lr: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _scalar(stage: dict, name: str) -> float:
    v = stage.get(name)
    if v is None or np.size(v) != 1 or not isinstance(v, (np.ndarray, np.generic, float, int)):
        return float("nan")
    return float(np.asarray(v, dtype=np.float64).reshape(()))


class HealthTracker:
    """Accumulate health series step by step; holds the previous parameters only.

    Args:
        initial: the parameters as loaded (the first update's base).
        stage: the stage holding the gradients.
        remember: summarize the tensors it reads (remembered: a summary-mode comparison or trace file summarizes
            the same ones next; :func:`~parity.trace.summary.norm_mean`), else only their sums.
    """

    def __init__(self, initial: dict | None = None, stage: str = "gradients", remember: bool = True):
        self.stage, self.remember = stage, remember
        # name -> (the previous parameters, their norm once computed): the step's own array,
        # not a float64 copy (the boundary copied it; nothing writes to it).
        self._prev: dict[str, tuple[np.ndarray, float | None]] = {k: (_flat(v), None) for k, v in (initial or {}).items()}
        self._names: list[str] | None = None
        self._norm: dict[str, array] = {}  # compact: 8 bytes per step
        self._var: dict[str, array] = {}
        self._ratio: dict[str, array] = {}
        self._loss = array("d")
        self._lr = array("d")

    def add(self, step: dict) -> None:
        """Take one step's ``{stage: {name: array or Summary}}``.

        A summarized gradient gives its norm and variance from its statistics; the update
        ratio needs the parameters in full (NaN where either step holds a summary).
        """
        self._loss.append(_scalar(step.get("loss", {}), "loss"))
        self._lr.append(_scalar(step.get("learning_rate", {}), "lr"))
        grads = step.get(self.stage)
        if self._names is None:
            if not grads:
                self._names = []
                return
            self._names = [n for n, g in grads.items() if isinstance(g, (np.ndarray, np.generic, Summary))]
        params = dict(step.get("parameters", {}))
        params.update(step.get("constrained", {}))
        with np.errstate(all="ignore"):  # (once per step: the sums below are taken in it)
            self._add(grads, params)

    def _add(self, grads, params) -> None:
        for name in self._names:
            g = (grads or {}).get(name)
            if isinstance(g, (np.ndarray, np.generic, Summary)):
                norm, var = _norm_var(g, self.remember)
                self._norm.setdefault(name, array("d")).append(norm)
                self._var.setdefault(name, array("d")).append(var)
            else:
                self._norm.setdefault(name, array("d")).append(float("nan"))
                self._var.setdefault(name, array("d")).append(float("nan"))
            prev, cur = self._prev.get(name), params.get(name)
            if prev is None or not isinstance(cur, (np.ndarray, np.generic)) or np.size(cur) != prev[0].size:
                self._ratio.setdefault(name, array("d")).append(float("nan"))
                self._prev.pop(name, None)
                continue
            c = _flat(cur)
            base = prev[1] if prev[1] is not None else _norm(prev[0], self.remember)
            if self.remember and c.size >= MEMO_MIN:  # (the norm from cur's summary, remembered)
                delta, norm = _distance(c, prev[0]), _norm(cur, self.remember)
            else:  # ||cur - prev|| and ||cur|| in one reading of cur
                delta, norm = _distance(c, prev[0], True)
            self._ratio.setdefault(name, array("d")).append(delta / base if base > 0 else (np.inf if delta > 0 else 0.0))
            self._prev[name] = (c, norm)
        for name in list(self._prev):
            if name not in self._names:  # keep only what the ratios need
                del self._prev[name]

    def result(self) -> Health:
        layers = [
            LayerHealth(n, np.array(self._norm.get(n, [])), np.array(self._var.get(n, [])), np.array(self._ratio.get(n, [])))
            for n in (self._names or [])
        ]
        return Health(layers, np.array(self._loss), np.array(self._lr))


def _flat(x) -> np.ndarray:
    a = np.asarray(x)
    return (a if a.flags.c_contiguous else np.ascontiguousarray(a)).reshape(-1)


#: The variance from the norm and the mean (sum of squares / n - mean^2, float64) is used where
#: the mean is small against the spread: its relative error is ~2^-53 (1 + mean^2 / var) <= 1e-12
#: there. Elsewhere (a near-constant tensor) numpy's two-pass form, the centred squares (a
#: summarized gradient, whose elements are gone, keeps the one-pass figure, clipped at 0).
ONE_PASS_LIMIT = 1e4


def _norm(x, remember: bool = True) -> float:
    """||x||, as its summary has it (:func:`~parity.trace.summary.norm_mean`: the same float64 sums)."""
    return norm_mean(x, remember)[0] if np.size(x) else 0.0


def _norm_var(g, remember: bool = True) -> tuple[float, float]:
    """||g|| and the variance of g's elements, from the float64 sums its summary holds."""
    n = g.size if isinstance(g, Summary) else np.size(g)
    if n == 0:
        return 0.0, float("nan")
    norm, mean = norm_mean(g, remember)
    with np.errstate(all="ignore"):
        var = norm * norm / n - mean * mean
        if var > 0 and mean * mean <= ONE_PASS_LIMIT * var:
            return norm, var
        if isinstance(g, Summary):
            return norm, max(var, 0.0) if var == var else var
        centered, buf = 0.0, scratch(2)
        for (b,) in float64_chunks(_flat(g)):
            centered += sum_of_squares(np.subtract(b, mean, out=buf[: b.size]))
    return norm, centered / n


def _distance(cur: np.ndarray, prev: np.ndarray, norm: bool = False):
    """||cur - prev||, the differences taken in float64, chunk by chunk; with ``norm``, ``(||cur - prev||, ||cur||)``,
    ||cur|| the same chunk sums as :func:`_norm`'s (:func:`~parity.trace.summary.norm_mean`), taken in the same
    reading of ``cur``."""
    delta = squares = 0.0
    buf = scratch(2)
    with np.errstate(all="ignore"):
        for bc, bp in float64_chunks(cur, prev):
            delta += sum_of_squares(np.subtract(bc, bp, out=buf[: bc.size]), 3)
            if norm:
                squares += sum_of_squares(bc, 3)
    return (math.sqrt(delta), math.sqrt(squares)) if norm else math.sqrt(delta)


def layer_health(trace, stage: str = "gradients") -> list[LayerHealth]:
    """Return per-variable health over the steps of ``trace``, in the port's variable order."""
    health = getattr(trace, "health", None)
    if health is not None and stage == "gradients":
        return list(health.layers)
    tracker = HealthTracker(trace.initial, stage)
    for s in trace.steps:
        tracker.add(s)
    return tracker.result().layers


def summarize(trace) -> dict[str, dict[str, float]]:
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
