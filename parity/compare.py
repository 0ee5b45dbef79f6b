"""Compare two traces of the same case: structure first, then values, stage by stage.

One primitive serves the report and the tests: :func:`compare` measures and returns a
:class:`Comparison`; :func:`assert_match` raises a :class:`~parity.errors.ParityError`
naming the first divergence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .cases import Cost
from .errors import ParityError
from .tolerance import bound as default_bound
from .trace import STAGES, Trace, stage_label

__all__ = ["TensorDiff", "StructureIssue", "Divergence", "Comparison", "compare", "assert_match", "diff_arrays"]

_STAGE_ORDER = {s: i for i, s in enumerate(STAGES)}


@dataclass(frozen=True)
class TensorDiff:
    """The difference of one tensor at one step and stage.

    ``max_rel`` is ``max_abs`` divided by the tensor's scale (the largest magnitude it has
    had up to this step in either trace, or the case's floor for the stage); ``index`` is
    the worst element; ``bound`` is the error model's limit.
    """

    step: int
    stage: str
    name: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    index: tuple[int, ...]
    a_value: float
    b_value: float
    scale: float
    bound: float

    @property
    def verdict(self) -> str:
        """"exact", "rounding" (within the bound) or "semantic"."""
        if self.max_abs == 0.0:
            return "exact"
        return "rounding" if self.max_rel <= self.bound else "semantic"

    @property
    def units(self) -> float:
        """The error in units of its bound (inf when the bound is 0 and the error is not)."""
        if self.max_rel == 0.0:
            return 0.0
        return self.max_rel / self.bound if self.bound > 0 else float("inf")

    def describe(self) -> str:
        idx = ",".join(map(str, self.index))
        return (
            f"{self.name}[{idx}] {self.a_value:.9g} vs {self.b_value:.9g} "
            f"(abs {self.max_abs:.3g}, rel {self.max_rel:.3g})"
        )


@dataclass(frozen=True)
class StructureIssue:
    """A tensor present in one trace only, or of different shapes: a named error."""

    step: int
    stage: str
    name: str
    kind: str  # "missing in A", "missing in B", "shape", "steps"
    detail: str

    def describe(self) -> str:
        return f"{self.name}: {self.kind} ({self.detail})"


@dataclass(frozen=True)
class Divergence:
    """Where two traces first disagree beyond rounding, or in structure."""

    step: int
    stage: str
    name: str
    kind: str  # "semantic" or "structure"
    detail: str
    diff: TensorDiff | None = None

    def describe(self) -> str:
        return f"step {self.step}, {stage_label(self.stage)}, {self.detail}"


@dataclass
class Comparison:
    """The result of comparing trace ``a`` (reference) with trace ``b``."""

    a: dict
    b: dict
    dtype: str
    diffs: list[TensorDiff] = field(default_factory=list)
    issues: list[StructureIssue] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (stage, the only port reporting it)

    @property
    def pair(self) -> str:
        return f"{self.a.get('port', '?')} vs {self.b.get('port', '?')}"

    @property
    def steps(self) -> int:
        return min(self.a.get("steps", 0), self.b.get("steps", 0))

    def divergences(self) -> list[Divergence]:
        """Every semantic difference and structure issue, in comparison order."""
        out = [Divergence(i.step, i.stage, i.name, "structure", i.describe()) for i in self.issues]
        out += [Divergence(d.step, d.stage, d.name, "semantic", d.describe(), d) for d in self.diffs if d.verdict == "semantic"]

        order = {id(d): i for i, d in enumerate(self.diffs)}

        def key(d: Divergence):
            err = d.diff.units if d.diff else float("inf")
            if d.stage == "forward" and d.diff is not None:
                # Ports record activations in network order: the earliest diverging layer is
                # the cause, later layers inherit its difference (seed 003: the BatchNorm
                # output, not the dropout after it that happens to differ more).
                return (d.step, _STAGE_ORDER["forward"], order[id(d.diff)])
            return (d.step, _STAGE_ORDER.get(d.stage, 99), -err)

        return sorted(out, key=key)

    @property
    def first_divergence(self) -> Divergence | None:
        """The earliest step, then the earliest stage, then the tensor with the largest error.

        Within the forward stage: the earliest layer (activations are recorded in network order).
        """
        divs = self.divergences()
        return divs[0] if divs else None

    def worst_by_stage(self) -> dict[str, TensorDiff]:
        """The tensor with the largest error (in units of its bound) per stage."""
        worst: dict[str, TensorDiff] = {}
        for d in self.diffs:
            cur = worst.get(d.stage)
            if cur is None or (d.units, d.max_rel) > (cur.units, cur.max_rel):
                worst[d.stage] = d
        return {s: worst[s] for s in STAGES if s in worst}

    def worst_rel(self, stages=None) -> float:
        """The largest relative error over the given stages (all by default)."""
        vals = [d.max_rel for d in self.diffs if stages is None or d.stage in stages]
        return max(vals, default=0.0)

    @property
    def verdict(self) -> str:
        """"structure", "semantic", "rounding" (all within bounds) or "exact"."""
        if self.issues:
            return "structure"
        verdicts = {d.verdict for d in self.diffs}
        for v in ("semantic", "rounding"):
            if v in verdicts:
                return v
        return "exact"

    @property
    def ok(self) -> bool:
        return self.verdict in ("exact", "rounding")


def _relative(max_abs: float, scale: float) -> float:
    if max_abs == 0.0:
        return 0.0
    if not np.isfinite(max_abs) or scale == 0.0:
        return float("inf")
    return max_abs / scale


def diff_arrays(a: np.ndarray, b: np.ndarray) -> tuple[float, float, tuple[int, ...], float, float, float]:
    """Return (max_abs, max_rel, worst index, a at it, b at it, scale) for two same-shape arrays.

    Non-finite values count as equal only where both are the same non-finite value.
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.size == 0:
        return 0.0, 0.0, (), 0.0, 0.0, 0.0
    err = np.abs(a64 - b64)
    flat = int(np.argmax(err))  # a NaN anywhere is the argmax: then take the careful path
    max_abs = float(err.flat[flat])
    if np.isfinite(max_abs):
        scale = float(max(np.abs(a64).max(), np.abs(b64).max()))
    else:
        same_nonfinite = (~np.isfinite(a64) | ~np.isfinite(b64)) & ((a64 == b64) | (np.isnan(a64) & np.isnan(b64)))
        err = np.where(same_nonfinite, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        flat = int(np.argmax(err))
        max_abs = float(err.flat[flat])
        finite = np.isfinite(a64) & np.isfinite(b64)
        scale = float(max(np.max(np.abs(a64[finite]), initial=0.0), np.max(np.abs(b64[finite]), initial=0.0)))
    rel = _relative(max_abs, scale)
    index = tuple(int(i) for i in np.unravel_index(flat, a64.shape)) if a64.ndim else ()
    return max_abs, rel, index, float(a64.flat[flat]), float(b64.flat[flat]), scale


def compare(
    a: Trace,
    b: Trace,
    *,
    cost: Cost | None = None,
    bound: Callable[[str, str, int, Cost | None], float] = default_bound,
    stages: tuple[str, ...] = STAGES,
) -> Comparison:
    """Compare ``b`` against the reference ``a``.

    Args:
        a: the reference trace.
        b: the trace checked against it.
        cost: the case's computation size (the float32 error model reads it).
        bound: the error model (tests can pass a stricter one).
        stages: the stages to compare.

    Raises:
        ParityError: when the traces are of different cases or dtypes (nothing to compare).
    """
    if a.case != b.case:
        raise ParityError(f"traces are of different cases: {a.case} ({a.port}) and {b.case} ({b.port})")
    if a.dtype != b.dtype:
        raise ParityError(f"traces are in different dtypes: {a.dtype} ({a.port}) and {b.dtype} ({b.port})", case=a.case)
    dtype = a.dtype
    out = Comparison(a=dict(a.manifest, steps=len(a.steps)), b=dict(b.manifest, steps=len(b.steps)), dtype=dtype)
    n = min(len(a.steps), len(b.steps))
    running: dict[tuple[str, str], float] = {}
    floors = dict(cost.floors) if cost is not None else {}
    if len(a.steps) != len(b.steps):
        out.issues.append(
            StructureIssue(n, "inputs", "steps", "steps", f"{a.port} has {len(a.steps)} steps, {b.port} has {len(b.steps)}")
        )
    # A stage one port never reports (a user's port without activations) is not compared,
    # and the comparison says so; a tensor missing from a stage both report is an error.
    reported_a = {s for st in a.steps for s in st}
    reported_b = {s for st in b.steps for s in st}
    out.skipped = [(s, a.port if s in reported_a else b.port) for s in stages if (s in reported_a) != (s in reported_b)]
    compared = [s for s in stages if s in reported_a and s in reported_b]
    for i in range(n):
        sa, sb = a.steps[i], b.steps[i]
        for stage in compared:
            ta, tb = sa.get(stage, {}), sb.get(stage, {})
            limit = bound(dtype, stage, i, cost)
            for name in list(ta) + [k for k in tb if k not in ta]:
                if name not in tb:
                    out.issues.append(StructureIssue(i, stage, name, "missing in B", f"only {a.port} reports it"))
                    continue
                if name not in ta:
                    out.issues.append(StructureIssue(i, stage, name, "missing in A", f"only {b.port} reports it"))
                    continue
                xa, xb = np.asarray(ta[name]), np.asarray(tb[name])
                if xa.shape != xb.shape:
                    out.issues.append(
                        StructureIssue(i, stage, name, "shape", f"{a.port} {list(xa.shape)} vs {b.port} {list(xb.shape)}")
                    )
                    continue
                max_abs, _, idx, va, vb, scale = diff_arrays(xa, xb)
                # The scale is the largest magnitude the tensor has had so far (in either
                # trace), or the case's floor for the stage: rounding errors scale with the
                # operands, and a tensor that shrinks towards zero (a residual, a loss at
                # convergence) keeps the rounding error of its earlier, larger operands.
                scale = max(scale, running.get((stage, name), 0.0))
                running[(stage, name)] = scale
                scale = max(scale, floors.get(stage, 0.0))
                rel = _relative(max_abs, scale)
                out.diffs.append(TensorDiff(i, stage, name, xa.shape, max_abs, rel, idx, va, vb, scale, limit))
    return out


def assert_match(a: Trace, b: Trace, *, cost: Cost | None = None, **kwargs) -> Comparison:
    """Compare and raise a :class:`ParityError` naming the first divergence, if any."""
    result = compare(a, b, cost=cost, **kwargs)
    first = result.first_divergence
    if first is not None:
        raise ParityError(f"{result.pair} ({result.dtype}) diverge first at {first.describe()} [{first.kind}]", case=a.case)
    return result
