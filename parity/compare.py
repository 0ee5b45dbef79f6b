"""Compare two runs of the same case step by step: structure first, then values, stage by stage.

One streaming comparator serves everything: :class:`Comparator` takes the two ports' steps
as they arrive (the runner runs ports in lockstep; a trace file is read record by record),
measures each tensor and keeps only

* per (stage, tensor) the worst difference (in units of its bound, with step, index, values);
* per stage, the worst units at every step (``Comparison.series``: the stage x step heatmap);
* the first divergence, and every :class:`TensorDiff` of the steps around it (``before``
  steps before, ``after`` after; ``keep="all"`` keeps every step's diffs);
* structure issues (the first occurrence of each), the stages only one port reports.

:func:`compare` feeds two in-memory traces through it (``keep="all"``: they are in memory
anyway). :func:`assert_match` raises a :class:`~parity.errors.ParityError` naming the first
divergence.

Float32 with a float64 run (the runner's lockstep): a float32 difference is rounding when
it is within ``max(model bound, ENVELOPE_FACTOR * drift)``, ``drift`` being the reference
port's own float32-vs-float64 difference of that tensor, relative to its running scale,
maximised over the steps so far (:class:`Drift`). Both numbers are kept in
:class:`TensorDiff` (``model_bound``, ``envelope``); the float64 verdict stays the judge of
semantics.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from .cases import Cost
from .errors import ParityError
from .summary import Summary, summarize
from .tolerance import bound as default_bound
from .trace import STAGES, stage_label

__all__ = [
    "TensorDiff",
    "StructureIssue",
    "Divergence",
    "Comparison",
    "Comparator",
    "Drift",
    "compare",
    "assert_match",
    "diff_arrays",
    "ENVELOPE_FACTOR",
]

_STAGE_ORDER = {s: i for i, s in enumerate(STAGES)}

#: How far a float32 port may differ from the float32 reference, in units of the
#: reference's own measured float32-vs-float64 drift. 2 is the triangle inequality
#: (|a32 - b32| <= |a32 - a64| + |b64 - b32| when a64 = b64) for a port whose own rounding
#: is no worse than the reference's; measured over the catalogue's faithful float32 pairs
#: whose error exceeds the written model, the largest err32/drift_a was 1.0 (the reference's
#: rounding dominates), while the tf32-emulated wrong port sits at >= 100x (see
#: tests/test_envelope.py and docs/tolerance.md).
ENVELOPE_FACTOR = 2.0


@dataclass(frozen=True)
class TensorDiff:
    """The difference of one tensor at one step and stage.

    ``max_rel`` is ``max_abs`` divided by the tensor's scale (the largest magnitude it has
    had up to this step in either run, or the case's floor for the stage); ``index`` is the
    worst element; ``bound`` is the limit the verdict uses: ``max(model_bound, envelope)``.
    ``model_bound`` is the written error model (:mod:`parity.tolerance`); ``envelope`` the
    measured float32 envelope (None without a float64 run). ``summary``: measured from
    tensor summaries, a lower bound of the true difference (:mod:`parity.summary`).
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
    model_bound: float | None = None
    envelope: float | None = None
    summary: bool = False

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

    @property
    def model_units(self) -> float:
        """The error in units of the written model alone."""
        model = self.bound if self.model_bound is None else self.model_bound
        if self.max_rel == 0.0:
            return 0.0
        return self.max_rel / model if model > 0 else float("inf")

    def describe(self) -> str:
        idx = ",".join(map(str, self.index))
        return (
            f"{self.name}[{idx}] {self.a_value:.9g} vs {self.b_value:.9g} "
            f"(abs {self.max_abs:.3g}, rel {self.max_rel:.3g}{', from summaries' if self.summary else ''})"
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


def _key(d: Divergence, position: int):
    if d.stage == "forward" and d.diff is not None:
        # Ports record activations in network order: the earliest diverging layer is the
        # cause, later layers inherit its difference (seed 003: the BatchNorm output, not
        # the dropout after it that happens to differ more).
        return (d.step, _STAGE_ORDER["forward"], position)
    err = d.diff.units if d.diff else float("inf")
    return (d.step, _STAGE_ORDER.get(d.stage, 99), -err)


@dataclass
class Comparison:
    """The result of comparing run ``a`` (reference) with run ``b``.

    ``diffs`` holds the kept :class:`TensorDiff` (every step with ``keep="all"``; otherwise
    the steps around the first divergence, the last steps, and the worst of each tensor);
    ``worst`` the worst per (stage, tensor) over the whole run; ``series`` the worst units
    per stage and step (NaN where the stage was not compared).
    """

    a: dict
    b: dict
    dtype: str
    diffs: list[TensorDiff] = field(default_factory=list)
    issues: list[StructureIssue] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (stage, the only port reporting it)
    worst: dict[tuple[str, str], TensorDiff] = field(default_factory=dict)
    series: dict[str, "array[float]"] = field(default_factory=dict)  # stage -> units per step
    first: Divergence | None = None
    n_semantic: int = 0
    n_rounding: int = 0
    kept_steps: list[int] = field(default_factory=list)
    max_rel: dict[str, float] = field(default_factory=dict)  # stage -> largest relative error

    @property
    def pair(self) -> str:
        return f"{self.a.get('port', '?')} vs {self.b.get('port', '?')}"

    @property
    def steps(self) -> int:
        return min(self.a.get("steps", 0), self.b.get("steps", 0))

    def divergences(self) -> list[Divergence]:
        """The structure issues and the kept semantic differences, in comparison order."""
        out = [(Divergence(i.step, i.stage, i.name, "structure", i.describe()), -1) for i in self.issues]
        out += [(Divergence(d.step, d.stage, d.name, "semantic", d.describe(), d), n) for n, d in enumerate(self.diffs) if d.verdict == "semantic"]
        return [d for d, _ in sorted(out, key=lambda t: _key(*t))]

    @property
    def first_divergence(self) -> Divergence | None:
        """The earliest step, then the earliest stage, then the tensor with the largest error.

        Within the forward stage: the earliest layer (activations are recorded in network order).
        """
        return self.first

    def worst_by_stage(self) -> dict[str, TensorDiff]:
        """The tensor with the largest error (in units of its bound) per stage."""
        worst: dict[str, TensorDiff] = {}
        for d in self.worst.values():
            cur = worst.get(d.stage)
            if cur is None or (d.units, d.max_rel) > (cur.units, cur.max_rel):
                worst[d.stage] = d
        return {s: worst[s] for s in STAGES if s in worst}

    def worst_rel(self, stages=None) -> float:
        """The largest relative error over the given stages (all by default)."""
        return max((v for s, v in self.max_rel.items() if stages is None or s in stages), default=0.0)

    @property
    def verdict(self) -> str:
        """"structure", "semantic", "rounding" (all within bounds) or "exact"."""
        if self.issues:
            return "structure"
        if self.n_semantic:
            return "semantic"
        return "rounding" if self.n_rounding else "exact"

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
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0:
        return 0.0, 0.0, (), 0.0, 0.0, 0.0
    if a.dtype == b.dtype and a.dtype.kind in "biu" and np.array_equal(a, b):
        return 0.0, 0.0, (0,) * a.ndim, float(a.flat[0]), float(b.flat[0]), float(np.abs(a).max())
    a64 = a.astype(np.float64, copy=False)
    b64 = b.astype(np.float64, copy=False)
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


def _stat_err(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    with np.errstate(invalid="ignore"):
        err = np.abs(x - y)
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def diff_summaries(a, b) -> tuple[float, float, tuple[int, ...], float, float, float]:
    """Like :func:`diff_arrays` for summaries (or a summary and an array): a lower bound of max|a - b|."""
    from .summary import sample_indices

    sa, sb = summarize(a), summarize(b)
    if sa.size == 0 or (sa.checksum == sb.checksum and sa.dtype == sb.dtype):
        return 0.0, 0.0, (), 0.0, 0.0, max(sa.scale, sb.scale)
    stats = _stat_err(sa.stats, sb.stats)
    stats[0] /= math.sqrt(sa.size)  # | |a| - |b| | <= sqrt(n) max|a - b|
    samples = _stat_err(sa.samples, sb.samples)
    worst_stat, worst_sample = float(stats.max()), float(samples.max(initial=0.0))
    scale = max(sa.scale, sb.scale) if np.isfinite(max(sa.scale, sb.scale)) else 0.0
    if worst_sample >= worst_stat and samples.size:
        j = int(np.argmax(samples))
        flat = int(sample_indices(sa.size)[j])
        index = tuple(int(i) for i in np.unravel_index(flat, sa.shape)) if sa.ndim else ()
        return worst_sample, _relative(worst_sample, scale), index, float(sa.samples[j]), float(sb.samples[j]), scale
    j = int(np.argmax(stats))
    return worst_stat, _relative(worst_stat, scale), (), float(sa.stats[j]), float(sb.stats[j]), scale


class Drift:
    """The measured float32 drift of one port: per tensor, max|x32 - x64| over its running scale.

    Fed the port's float64 and float32 steps side by side; :meth:`add` returns, per
    (stage, name), the largest relative drift so far (the running maximum over steps).
    """

    def __init__(self):
        self._scale: dict[tuple[str, str], float] = {}
        self._drift: dict[tuple[str, str], float] = {}

    def add(self, s64: Mapping, s32: Mapping) -> dict[tuple[str, str], float]:
        for stage, t32 in s32.items():
            if stage == "inputs":
                continue
            t64 = s64.get(stage, {})
            for name, x32 in t32.items():
                x64 = t64.get(name)
                if x64 is None or np.shape(x64) != np.shape(x32):
                    continue
                if isinstance(x32, Summary) or isinstance(x64, Summary):
                    max_abs, _, _, _, _, scale = diff_summaries(x64, x32)
                else:
                    max_abs, _, _, _, _, scale = diff_arrays(x64, x32)
                key = (stage, name)
                scale = self._scale[key] = max(scale, self._scale.get(key, 0.0))
                rel = _relative(max_abs, scale)
                self._drift[key] = max(rel, self._drift.get(key, 0.0))
        return self._drift


class Comparator:
    """Compare two runs step by step, keeping only aggregates (see the module docstring).

    Args:
        a, b: the two manifests (``a`` is the reference).
        cost: the case's computation size (the float32 error model reads it).
        bound: the error model ``bound(dtype, stage, step, cost)``.
        stages: the stages to compare.
        keep: "window" (diffs of the steps around the first divergence) or "all".
        before, after: the window, in steps.
        on_divergence: called with the step of the first divergence, when found.
    """

    def __init__(
        self,
        a: Mapping,
        b: Mapping,
        *,
        cost: Cost | None = None,
        bound: Callable[[str, str, int, Cost | None], float] = default_bound,
        stages: tuple[str, ...] = STAGES,
        keep: str = "window",
        before: int = 2,
        after: int = 2,
        on_divergence: Callable[[int], None] | None = None,
    ):
        if a.get("case", "?") != b.get("case", "?"):
            raise ParityError(f"traces are of different cases: {a.get('case')} ({a.get('port')}) and {b.get('case')} ({b.get('port')})")
        if a.get("dtype", "?") != b.get("dtype", "?"):
            raise ParityError(f"traces are in different dtypes: {a.get('dtype')} ({a.get('port')}) and {b.get('dtype')} ({b.get('port')})", case=a.get("case"))
        self.out = Comparison(a=dict(a), b=dict(b), dtype=a.get("dtype", "?"))
        self.cost, self.bound, self.stages = cost, bound, tuple(stages)
        self.keep, self.before, self.after = keep, before, after
        self.on_divergence = on_divergence
        self.floors = dict(cost.floors) if cost is not None else {}
        self._running: dict[tuple[str, str], float] = {}
        self._ring: deque[tuple[int, list[TensorDiff]]] = deque()
        self._kept: list[TensorDiff] = []
        self._keep_until = -1
        self._one_sided: dict[str, tuple[int, str, tuple[str, ...]]] = {}
        self._reported = ({}, {})  # stage -> True, per side
        self._seen_issues: set[tuple[str, str, str]] = set()
        self.steps = 0

    def _issue(self, i, stage, name, kind, detail, found):
        if (stage, name, kind) in self._seen_issues:
            return
        self._seen_issues.add((stage, name, kind))
        issue = StructureIssue(i, stage, name, kind, detail)
        self.out.issues.append(issue)
        found.append((Divergence(i, stage, name, "structure", issue.describe()), -1))

    def add(self, sa: Mapping, sb: Mapping, drift: Mapping[tuple[str, str], float] | None = None) -> None:
        """Compare the next step of both runs (``{stage: {name: array or Summary}}``)."""
        i, out = self.steps, self.out
        pa, pb = out.a.get("port", "?"), out.b.get("port", "?")
        diffs: list[TensorDiff] = []
        found: list[tuple[Divergence, int]] = []
        for stage in self.stages:
            in_a, in_b = stage in sa, stage in sb
            if in_a:
                self._reported[0][stage] = True
            if in_b:
                self._reported[1][stage] = True
            if not (in_a and in_b):
                if in_a or in_b:
                    self._one_sided.setdefault(stage, (i, "a" if in_a else "b", tuple(sa[stage] if in_a else sb[stage])))
                continue
            ta, tb = sa[stage], sb[stage]
            model = self.bound(out.dtype, stage, i, self.cost)
            worst_units = 0.0
            for pos, name in enumerate(list(ta) + [k for k in tb if k not in ta]):
                if name not in tb:
                    self._issue(i, stage, name, "missing in B", f"only {pa} reports it", found)
                    continue
                if name not in ta:
                    self._issue(i, stage, name, "missing in A", f"only {pb} reports it", found)
                    continue
                xa, xb = ta[name], tb[name]
                if np.shape(xa) != np.shape(xb):
                    self._issue(i, stage, name, "shape", f"{pa} {list(np.shape(xa))} vs {pb} {list(np.shape(xb))}", found)
                    continue
                summary = isinstance(xa, Summary) or isinstance(xb, Summary)
                max_abs, _, idx, va, vb, scale = (diff_summaries if summary else diff_arrays)(xa, xb)
                # The scale is the largest magnitude the tensor has had so far (in either
                # run), or the case's floor for the stage: rounding errors scale with the
                # operands, and a tensor that shrinks towards zero (a residual, a loss at
                # convergence) keeps the rounding error of its earlier, larger operands.
                key = (stage, name)
                scale = self._running[key] = max(scale, self._running.get(key, 0.0))
                scale = max(scale, self.floors.get(stage, 0.0))
                rel = _relative(max_abs, scale)
                envelope = None
                if drift is not None and stage != "inputs":
                    envelope = ENVELOPE_FACTOR * drift.get(key, 0.0)
                limit = max(model, envelope or 0.0)
                d = TensorDiff(i, stage, name, tuple(np.shape(xa)), max_abs, rel, idx, va, vb, scale, limit, model, envelope, summary)
                diffs.append(d)
                cur = self.out.worst.get(key)
                if cur is None or (d.units, d.max_rel) > (cur.units, cur.max_rel):
                    self.out.worst[key] = d
                worst_units = max(worst_units, d.units)
                if rel > out.max_rel.get(stage, 0.0) or (rel != rel):
                    out.max_rel[stage] = rel if rel == rel else math.inf
                verdict = d.verdict
                if verdict == "semantic":
                    out.n_semantic += 1
                    found.append((Divergence(i, stage, name, "semantic", d.describe(), d), pos))
                elif verdict == "rounding":
                    out.n_rounding += 1
            out.series.setdefault(stage, array("d", [math.nan] * i)).append(worst_units)
        for stage, values in out.series.items():
            if len(values) <= i:
                values.append(math.nan)
        self._keep_diffs(i, diffs)
        if found and out.first is None:
            out.first = min(found, key=lambda t: _key(*t))[0]
            self._freeze(i)
            if self.on_divergence is not None:
                self.on_divergence(i)
        self.steps += 1

    def _keep_diffs(self, i: int, diffs: list[TensorDiff]) -> None:
        if self.keep == "all" or i <= self._keep_until:
            self._kept.extend(diffs)
            return
        self._ring.append((i, diffs))
        while len(self._ring) > self.before + 1:
            self._ring.popleft()

    def _freeze(self, k: int) -> None:
        if self.keep == "all":
            return
        for j, diffs in self._ring:
            if j >= k - self.before:
                self._kept.extend(diffs)
        self._ring = deque((j, d) for j, d in self._ring if j < k - self.before)
        self._keep_until = k + self.after

    def finish(self, steps_a: int | None = None, steps_b: int | None = None) -> Comparison:
        """Close the comparison (``steps_a``/``steps_b``: each run's step count, default: as fed)."""
        out = self.out
        steps_a = self.steps if steps_a is None else steps_a
        steps_b = self.steps if steps_b is None else steps_b
        out.a["steps"], out.b["steps"] = steps_a, steps_b
        pa, pb = out.a.get("port", "?"), out.b.get("port", "?")
        late: list[tuple[Divergence, int]] = []
        if steps_a != steps_b:
            self._issue(min(steps_a, steps_b), "inputs", "steps", "steps", f"{pa} has {steps_a} steps, {pb} has {steps_b}", late)
        # A stage one port never reports (a user's port without activations) is not compared,
        # and the comparison says so; a stage both report, at different steps, is an error.
        for stage in self.stages:
            if stage not in self._one_sided:
                continue
            step, side, names = self._one_sided[stage]
            if stage in self._reported[0] and stage in self._reported[1]:
                for name in names:
                    kind, who = ("missing in B", pa) if side == "a" else ("missing in A", pb)
                    self._issue(step, stage, name, kind, f"only {who} reports it", late)
            else:
                out.skipped.append((stage, pa if stage in self._reported[0] else pb))
        if late:
            cands = late + ([(out.first, 0)] if out.first is not None else [])
            out.first = min(cands, key=lambda t: _key(*t))[0]
        kept = list(self._kept) + [d for _, diffs in self._ring for d in diffs]
        ids = {id(d) for d in kept}
        kept += [d for d in out.worst.values() if id(d) not in ids]
        order = {id(d): n for n, d in enumerate(kept)}
        kept.sort(key=lambda d: (d.step, _STAGE_ORDER.get(d.stage, 99), order[id(d)]))
        out.diffs = kept
        out.kept_steps = sorted({d.step for d in self._kept} | {j for j, _ in self._ring})
        return out


def compare(
    a,
    b,
    *,
    cost: Cost | None = None,
    bound: Callable[[str, str, int, Cost | None], float] = default_bound,
    stages: tuple[str, ...] = STAGES,
    keep: str = "all",
) -> Comparison:
    """Compare ``b`` against the reference ``a`` (two traces: :class:`~parity.trace.Trace`, or steps read lazily).

    Args:
        a: the reference trace.
        b: the trace checked against it.
        cost: the case's computation size (the float32 error model reads it).
        bound: the error model (tests can pass a stricter one).
        stages: the stages to compare.
        keep: "all" (every step's diffs) or "window".

    Raises:
        ParityError: when the traces are of different cases or dtypes (nothing to compare).
    """
    cmp = Comparator(a.manifest, b.manifest, cost=cost, bound=bound, stages=stages, keep=keep)
    na = nb = 0
    it_a, it_b = iter(a.steps), iter(b.steps)
    while True:
        sa, sb = next(it_a, None), next(it_b, None)
        na += sa is not None
        nb += sb is not None
        if sa is None or sb is None:
            break
        cmp.add(sa, sb)
    for _ in it_a:
        na += 1
    for _ in it_b:
        nb += 1
    return cmp.finish(na, nb)


def assert_match(a, b, *, cost: Cost | None = None, **kwargs) -> Comparison:
    """Compare and raise a :class:`ParityError` naming the first divergence, if any."""
    result = compare(a, b, cost=cost, **kwargs)
    first = result.first_divergence
    if first is not None:
        raise ParityError(f"{result.pair} ({result.dtype}) diverge first at {first.describe()} [{first.kind}]", case=a.case)
    return result
