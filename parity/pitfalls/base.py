"""What every signature is built from: the :class:`Context` a checker reads, the tolerant
comparisons it uses, and the :class:`Pitfall` record with its preconditions.

A signature never compares floats exactly: every "equal" is :func:`close` at the run's own
tolerance (:attr:`Context.tol`), every "constant ratio" is :func:`constant_ratio` at that
tolerance. A tensor the traces do not hold (a step outside a streamed window keeps its small tensors
only) is no evidence: :meth:`Context.at` leaves it out and the checker moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from parity.comparison.comparator import Comparison, Divergence
from parity.trace.memory import Trace

__all__ = [
    "Context", "Pitfall", "Precondition", "pitfall", "close", "predicts", "predicts_through", "constant_ratio",
    "first_match", "side_of", "ratio",
]


@dataclass
class Context:
    """What a signature checker sees: the comparison, its first divergence and the two traces.

    ``a`` is the reference, ``b`` the port. Steps are read through :meth:`at` and
    :meth:`params_before` only, so a trace that holds a window of steps (the full tensors
    around the first divergence) answers ``{}`` outside it: no evidence, never an error.
    """

    comparison: Comparison
    first: Divergence
    a: Trace
    b: Trace
    case_options: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # both programs' facts (parity diff), {} elsewhere

    @property
    def k(self) -> int:
        return self.first.step

    @property
    def dtype(self) -> str:
        return self.comparison.dtype

    @property
    def tol(self) -> float:
        """Relative tolerance of a recomputed prediction: the run's own rounding, widened 100x.

        float32 traces carry ~1e-7 relative rounding per operation (times depth), float64 ~1e-16;
        a prediction recomputed in float64 from float32 inputs is good to ~1e-5 (1e-3 leaves room
        for the depth of the cases), from float64 inputs to ~1e-12 (1e-7 likewise).
        """
        return 1e-3 if self.dtype == "float32" else 1e-7

    def n_steps(self) -> int:
        return min(_n_steps(self.a), _n_steps(self.b))

    def at(self, trace: Trace, stage: str, step: int | None = None) -> dict:
        """The tensors of ``stage`` at ``step`` (default: the first divergence's) that the trace holds.

        A full trace holds every tensor; a streamed window holds every tensor of the steps it
        kept and only the small ones (loss, learning rate...) of the others: a dropped tensor
        (``OutsideWindow``, an ``IndexError``) is left out, as is a step that was never run.
        """
        step = self.k if step is None else step
        steps = trace.steps
        if step < 0 or step >= len(steps):
            return {}
        try:
            held = steps[step][stage]
        except (KeyError, IndexError):
            return {}
        if isinstance(held, dict):
            return held
        out = {}
        for name in held:
            try:
                out[name] = held[name]
            except (KeyError, IndexError):
                continue  # outside the kept window: no evidence
        return out

    def params_before(self, trace: Trace, step: int | None = None) -> dict:
        """The parameters a step started from (the loaded ones at step 0); ``{}`` if not held."""
        step = self.k if step is None else step
        return dict(trace.initial) if step == 0 else dict(self.at(trace, "parameters", step - 1))

    def param_names(self) -> set:
        """The parameters' names (loaded ones, and those the steps around the divergence report)."""
        return set(self.a.initial) | set(self.at(self.a, "parameters")) | set(self.params_before(self.a))

    def settings(self, trace: Trace) -> dict:
        return dict(trace.manifest.get("settings") or {})

    def fact(self, key: str) -> tuple:
        """(reference, port) values of one program fact (``parity diff``); (None, None) where not read."""
        return tuple((self.facts.get(side) or {}).get(key) for side in ("reference", "port"))

    def options(self) -> dict:
        """The case's options (hyper-parameters the run was configured with), where the caller passed the case."""
        return {k: v for k, v in (self.case_options or {}).items() if k not in ("pitfall", "scenario")}

    def hyper(self, key: str):
        """A number the run was configured with: the ports' settings first, then the case options
        (top level or under ``optimizer``); None where neither says."""
        for t in (self.a, self.b):
            v = self.settings(t).get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        o = self.options()
        for v in (o.get(key), (o.get("optimizer") or {}).get(key) if isinstance(o.get("optimizer"), dict) else None):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
        return None

    def semantic(self, stage: str, name: str | None = None, step: int | None = None) -> bool:
        step = self.k if step is None else step
        return any(
            d.step == step and d.stage == stage and (name is None or d.name == name) and d.verdict == "semantic"
            for d in self.comparison.diffs
        )

    def matching(self, stage: str, step: int | None = None) -> dict:
        """Tensors of ``stage`` that agree (within rounding) at ``step``: name -> the reference's array."""
        step = self.k if step is None else step
        ta, tb = self.at(self.a, stage, step), self.at(self.b, stage, step)
        return {n: np.asarray(v, float) for n, v in ta.items()
                if n in tb and np.shape(tb[n]) == np.shape(v) and not self.semantic(stage, n, step)}

    def diverging(self, stage: str, step: int | None = None, ndim: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """(name, reference, port) for every tensor of ``stage`` that diverges at ``step`` (of rank ``ndim``)."""
        step = self.k if step is None else step
        ta, tb = self.at(self.a, stage, step), self.at(self.b, stage, step)
        return [(n, np.asarray(ta[n], float), np.asarray(tb[n], float)) for n in ta
                if n in tb and np.shape(ta[n]) == np.shape(tb[n]) and self.semantic(stage, n, step)
                and (ndim is None or np.ndim(ta[n]) == ndim)]

    def updates(self, trace: Trace, name: str, step: int | None = None):
        """The change a step made to parameter ``name`` (``None`` where a side is not held)."""
        step = self.k if step is None else step
        after, before = self.at(trace, "parameters", step).get(name), self.params_before(trace, step).get(name)
        if after is None or before is None:
            return None
        return np.asarray(after, float) - np.asarray(before, float)


def _n_steps(trace: Trace) -> int:
    return len(trace.steps)


# -- tolerant comparisons -----------------------------------------------------------------------------
def close(x, y, tol: float) -> bool:
    """Whether two arrays agree to ``tol`` relative to the larger of them (shape mismatch: no)."""
    if x is None or y is None:
        return False
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape:
        return False
    scale = max(np.max(np.abs(x), initial=0.0), np.max(np.abs(y), initial=0.0), 1e-300)
    return bool(np.max(np.abs(x - y), initial=0.0) <= tol * scale)


def predicts(observed_delta, predicted_delta, tol: float) -> bool:
    """Whether a predicted difference explains an observed one (relative to the observed size)."""
    o, p = np.asarray(observed_delta, float), np.asarray(predicted_delta, float)
    if o.shape != p.shape:
        return False
    size = np.max(np.abs(o), initial=0.0)
    return size > 0 and bool(np.max(np.abs(o - p)) <= max(tol, 1e-6) * 10 * size)


def predicts_through(ya, yb, predicted_delta, tol: float) -> bool:
    """Like :func:`predicts` on ``yb - ya``, looking through a ReLU after the layer.

    Ports often record a layer's output after its activation (seed 001's conv1 and fc1
    are ReLU outputs): where both outputs are positive, the ReLU is the identity in both
    and the difference is the linear one; where either is clipped to 0 it says nothing.
    """
    ya, yb = np.asarray(ya, float), np.asarray(yb, float)
    if predicts(yb - ya, predicted_delta, tol):
        return True
    if ya.shape != np.shape(predicted_delta) or ya.min(initial=0.0) < 0 or yb.min(initial=0.0) < 0:
        return False
    active = (ya > 0) & (yb > 0)
    if active.sum() < max(8, active.size // 10):
        return False
    return predicts((yb - ya)[active], np.asarray(predicted_delta, float)[active], tol)


def constant_ratio(num, den, tol: float = 1e-6):
    """Return the common value of num/den over the entries where den is not ~0, or None."""
    num, den = np.asarray(num, float).ravel(), np.asarray(den, float).ravel()
    mask = np.abs(den) > 1e-12 * max(np.max(np.abs(den), initial=0.0), 1e-300)
    if mask.sum() < 2:
        return None
    r = num[mask] / den[mask]
    med = float(np.median(r))
    if not np.isfinite(med) or med == 0:
        return None
    return med if np.max(np.abs(r - med)) <= max(tol, 1e-9) * abs(med) * 10 else None


def ratio(num, den, tol: float = 1e-6):
    """Like :func:`constant_ratio`, and a single element is its own ratio (a 1x1 network's kernel)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    if num.size == 1 and den.size == 1:
        d = float(den.ravel()[0])
        r = float(num.ravel()[0]) / d if abs(d) > 1e-300 else 0.0
        return r if r != 0 and np.isfinite(r) else None
    return constant_ratio(num, den, tol)


def side_of(ya, yb, ref, alt, tol: float) -> bool:
    """The common shape "A computes ``ref``, B computes ``alt``" (both recomputed in numpy)."""
    return close(ref, ya, tol * 10) and close(alt, yb, tol * 10)


def first_match(items: Iterator) -> tuple[float, str] | None:
    """Return the first non-None item of a generator of (score, evidence) hits."""
    return next((hit for hit in items if hit), None)


# -- the record ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Precondition:
    """What the traces must hold before a signature may be proposed ("BatchNorm state")."""

    what: str
    test: Callable[[Context], bool] = field(repr=False, compare=False)

    def __call__(self, ctx: Context) -> bool:
        return bool(self.test(ctx))


@dataclass(frozen=True)
class Pitfall:
    """One known porting trap.

    Attributes:
        name: short kebab-case id ("bn-momentum").
        title: one line.
        family: "batchnorm", "optimizer", "schedule", "clipping", "layout", "loss", "loop", "rnn", ...
        pitfall_id: PITFALLS.md id ("P01").
        explanation: what goes wrong, in a few sentences.
        tf_formula: TensorFlow's definition.
        torch_formula: PyTorch's definition.
        fix: how to port it right.
        stages: the stage(s) that diverge first.
        pattern: the signature, in words.
        check: the signature checker ``check(ctx) -> (score, evidence) | None``.
        requires: preconditions on the traces; the signature is not tried without them.
    """

    name: str
    title: str
    family: str
    pitfall_id: str
    explanation: str
    tf_formula: str
    torch_formula: str
    fix: str
    stages: tuple[str, ...]
    pattern: str
    check: Callable[[Context], tuple[float, str] | None] = field(repr=False, compare=False)
    requires: tuple[Precondition, ...] = ()
    shapes: bool = False  # its signature reads a shape difference (a structure divergence), not values

    @property
    def wrong_case(self) -> str:
        return f"pitfall_{self.name.replace('-', '_')}_wrong"

    @property
    def right_case(self) -> str:
        return f"pitfall_{self.name.replace('-', '_')}_right"

    def applies(self, ctx: Context) -> bool:
        return all(req(ctx) for req in self.requires)


def pitfall(name, title, family, pid, stages, pattern, check, *, explanation, tf, torch, fix, requires=(), shapes=False) -> Pitfall:
    """Build a :class:`Pitfall` (the one shape every family module's ``PITFALLS`` list uses); ``shapes``: the
    signature explains a tensor whose shapes differ (the comparison's structure divergence), not its values."""
    return Pitfall(name, title, family, pid, explanation, tf, torch, fix, tuple(stages), pattern, check, tuple(requires), shapes)
