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

The scale of a tensor is the largest magnitude it has had (either run), from the gradients on at least its
layer's operand scale (:func:`layer_of`: a zero computed as rounding noise of its terms is judged against them),
and the gradients' accepted error is carried through the update rule (:mod:`.propagate`; docs/tolerance.md,
"Values that are zero or cancel"). A NaN or inf is noted where it first appears in each run.

Float32 with a float64 run (the runner's lockstep): a float32 difference is rounding when
it is within ``max(model bound, envelope)``, the envelope being what both ports' own
float32-vs-float64 drifts explain, the port's counted only up to a multiple of the model
bound (:mod:`parity.comparison.envelope`). A float64 difference is rounding within
``max(1e-10, the float32 envelope x 2^-29)`` where the float32 drifts were measured: the same
rounding at float64's unit roundoff (a saturated softmax's p - 1 cancels in both). Both numbers
are kept in :class:`TensorDiff` (``model_bound``, ``envelope``); the float64 verdict stays the
judge of semantics.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import Callable, Mapping

import numpy as np

from parity.cases.case import Cost
from parity.comparison.records import Comparison, Divergence, NonFinite, StructureIssue, TensorDiff, QUIET, _relative, tensor_diff, diff_arrays, diff_summaries, divergence_key as _key, first_nonfinite, layer_of, shape_of
from parity.comparison.propagate import EXCESS_STAGES, Propagation
from parity.comparison.pairdiff import measure_from, measure_keeping
from parity.comparison.batched import step_measures
from parity.comparison.pairs import add_together, pairs_of
from parity.comparison.envelope import ENVELOPE_FACTOR, PORT_CAP, Drift, envelope as _envelope, float64_envelope
from parity.errors import ParityError
from parity.trace.summary import Summary, summarize
from parity.comparison.tolerance import bound as default_bound
from parity.trace.memory import STAGES

__all__ = [
    "TensorDiff",
    "StructureIssue",
    "Divergence",
    "Comparison",
    "Comparator",
    "add_together",
    "Drift",
    "pairs_of",
    "compare",
    "assert_match",
    "diff_arrays",
    "ENVELOPE_FACTOR",
    "PORT_CAP",
]

_STAGE_ORDER = {s: i for i, s in enumerate(STAGES)}

#: Stages measured against their own scale only (the inputs must be identical; a forward output, the loss, the rate
#: are not zeros computed from larger terms); the others against their layer's operand scale too (docs/tolerance.md).
OWN_SCALE_ONLY = ("inputs", "forward", "loss", "learning_rate")


class Comparator:
    """Compare two runs step by step, keeping only aggregates (see the module docstring).

    Args:
        a, b: the two manifests (``a`` is the reference).
        cost: the case's computation size (the float32 error model reads it).
        bound: the error model ``bound(dtype, stage, step, cost)``.
        stages: the stages to compare.
        keep: "window" (diffs of the steps around the first divergence) or "all".
        before, after: the window, in steps.
        on_divergence: called with the step of the first divergence, when found. ``initial``: both runs'
        parameters before the first step (the first update's move, :mod:`.propagate`).
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
        on_divergence: Callable[[int], None] | None = None, initial: tuple | None = None,
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
        self._operands: dict[tuple[str, str], float] = {}  # (stage, layer) -> its largest magnitude so far
        self._prop = Propagation(initial)  # the gradients' accepted error carried into the parameters
        self._prop.source_diff = self._source_measured
        self._ring: deque[tuple[int, list[TensorDiff]]] = deque()
        self._kept: list[TensorDiff] = []
        self._keep_until = -1
        self._one_sided: dict[str, tuple[int, str, tuple[str, ...]]] = {}
        self._reported = ({}, {})  # stage -> True, per side
        self._seen_issues: set[tuple[str, str, str]] = set()
        self.steps = 0
        self._measured: dict = {}  # (stage, name) -> this step's measure of it (:func:`_raw`)

    def _issue(self, i, stage, name, kind, detail, found):
        if (stage, name, kind) in self._seen_issues:
            return
        self._seen_issues.add((stage, name, kind))
        issue = StructureIssue(i, stage, name, kind, detail)
        self.out.issues.append(issue)
        found.append((Divergence(i, stage, name, "structure", issue.describe()), -1))

    def add(self, sa: Mapping, sb: Mapping, drift: Mapping[tuple[str, str], float] | None = None,
            drift_b: Mapping[tuple[str, str], float] | None = None,
            cond: Mapping[tuple[str, str], float] | None = None) -> None:
        """Compare the next step of both runs (``{stage: {name: array or Summary}}``).

        ``drift``, ``drift_b``: each port's own float32 drift so far (:class:`Drift`), when
        it was measured: the limit becomes ``max(model, envelope)``, in float64 with the float32
        envelope scaled by 2^-29. ``cond``: how far each tensor moved so far in the float32
        conditioning run (:mod:`parity.comparison.envelope`), when one ran.
        """
        add_together([(self, sa, sb, drift, drift_b, cond)])

    def _stepping(self, sa, sb, drift, drift_b, cond):
        """:meth:`add`'s comparison of the stages, a generator that pauses after each stage (:func:`add_together`;
        run in ``QUIET``'s error state: _raw measures in it, diff_arrays' own state); it returns what
        :meth:`_stepped` closes the step with."""
        i, out = self.steps, self.out
        pa, pb = out.a.get("port", "?"), out.b.get("port", "?")
        diffs: list[TensorDiff] = []
        found: list[tuple[Divergence, int]] = []
        self._measured = step_measures(sa, sb, self.stages)  # the step's small tensors together (.batched)
        yield from self._add_stages(i, sa, sb, pa, pb, diffs, found, drift, drift_b, cond)
        return i, diffs, found

    def _stepped(self, i, diffs, found) -> None:
        out = self.out
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

    def _add_stages(self, i, sa, sb, pa, pb, diffs, found, drift, drift_b, cond):  # (a generator: a stage a time)
        out = self.out
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
            raw = []
            for pos, name in enumerate(list(ta) + [k for k in tb if k not in ta]):
                if name not in tb:
                    self._issue(i, stage, name, "missing in B", f"only {pa} reports it", found)
                    continue
                if name not in ta:
                    self._issue(i, stage, name, "missing in A", f"only {pb} reports it", found)
                    continue
                xa, xb = ta[name], tb[name]
                if shape_of(xa) != shape_of(xb):
                    self._issue(i, stage, name, "shape", f"{pa} {list(np.shape(xa))} vs {pb} {list(np.shape(xb))}", found)
                    continue
                r, kept = self._raw(i, stage, name, xa, xb)
                # (the carried error's excess read here, while the pair's |a - b| is at hand: it reads only the
                # propagation's own state and this step's arrays, as after the stage's measures)
                raw.append((pos, name, r, self._prop.excess(stage, name, r, xa, xb, sa, sb, kept)))
            operands = self._operand_scales(stage, raw)
            for pos, name, r, excess in raw:
                d = self._measure(i, stage, name, r, model, operands.get(layer_of(stage, name), 0.0), drift, drift_b, cond, excess)
                self._prop.accept(stage, name, d.verdict)
                diffs.append(d)
                worst_units = max(worst_units, d.units)
                verdict = d.verdict
                if verdict == "semantic":
                    out.n_semantic += 1
                    if out.first is None:  # only the first divergence is described
                        found.append((Divergence(i, stage, name, "semantic", d.describe(), d), pos))
                elif verdict == "nonfinite":
                    out.n_nonfinite += 1
                    if out.first is None:
                        found.append((Divergence(i, stage, name, "nonfinite", d.describe(), d), pos))
                elif verdict == "rounding":
                    out.n_rounding += 1
            (out.series.get(stage) or out.series.setdefault(stage, array("d", [math.nan] * i))).append(worst_units)
            yield

    def _raw(self, i: int, stage: str, name: str, xa, xb):
        """The elementwise measure of one tensor (:func:`diff_arrays`; a small one taken with the step's others:
        :mod:`.batched`), its non-finite elements noted as each run's first NaN or inf (:class:`NonFinite`); and
        the pair's float64 ``|a - b|`` where the carried error may read it (:func:`.pairdiff.measure_keeping`)."""
        summary = isinstance(xa, Summary) or isinstance(xb, Summary)  # (the measure in add's error state:)
        kept = None
        if summary:
            m, maybe = diff_summaries(xa, xb), True
        else:
            got = self._measured.get((stage, name))
            if got is None:
                got, kept = measure_keeping(xa, xb, stage in EXCESS_STAGES)
            m, maybe = got
        bad = 0
        if maybe:
            out = self.out
            for side, x in (("a", xa), ("b", xb)):
                nf = first_nonfinite(summarize(x) if summary else x)  # (a summary is remembered: no second pass)
                if nf is None:
                    continue
                bad = max(bad, nf[0])
                if side not in out.nonfinite:
                    port = (out.a if side == "a" else out.b).get("port", "?")
                    out.nonfinite[side] = NonFinite(i, stage, name, port, nf[1], nf[2], nf[0])
        return (m, summary, tuple(shape_of(xa)), bad), kept

    def _source_measured(self, stage: str, name: str, xa, xb, diff) -> None:
        """A first-moment slot's pair whose float64 ``|a - b|`` the carried error's update took (the parameters
        stage): its measure taken from it, for the slots stage next (:func:`.pairdiff.measure_from`)."""
        if stage == "slots" and stage in self.stages and (stage, name) not in self._measured:
            self._measured[(stage, name)] = measure_from(xa, xb, diff)[0]

    def _operand_scales(self, stage: str, raw) -> dict[str, float]:
        """Per layer (:func:`layer_of`), its largest magnitude in this stage so far, in either run: the scale
        of what its tensors were computed from ("" also takes the whole stage's). Empty for the stages
        measured against their own scale only (:data:`OWN_SCALE_ONLY`)."""
        if stage in OWN_SCALE_ONLY:
            return {}
        for _, name, r, _ in raw:
            scale = r[0][5]
            if math.isfinite(scale):
                for layer in {layer_of(stage, name), ""}:
                    key = (stage, layer)
                    self._operands[key] = max(scale, self._operands.get(key, 0.0))
        return {layer: v for (st, layer), v in self._operands.items() if st == stage}

    def _measure(self, i: int, stage: str, name: str, raw, model: float, operands: float, drift, drift_b, cond, excess=None) -> TensorDiff:
        """One tensor's difference at step ``i``, against its limit: the error model, or the measured envelope."""
        out = self.out
        (max_abs, _, idx, va, vb, scale), summary, shape, nonfinite = raw
        # The scale is the largest magnitude the tensor has had so far (in either
        # run), or the case's floor for the stage: rounding errors scale with the
        # operands, and a tensor that shrinks towards zero (a residual, a loss at
        # convergence) keeps the rounding error of its earlier, larger operands.
        key = (stage, name)
        scale = self._running[key] = max(scale, self._running.get(key, 0.0))
        own = scale = max(scale, self.floors.get(stage, 0.0))
        # From the gradients on, at least its layer's operand scale: a gradient that is zero in exact arithmetic (a
        # softmax's shift, a bias before BatchNorm) is rounding noise of the terms it sums (docs/tolerance.md).
        scale = max(scale, operands)
        max_abs, idx, va, vb, beyond = excess or (max_abs, idx, va, vb, max_abs)  # beyond the carried error (propagate)
        rel = _relative(beyond, scale)
        envelope = None
        if (drift is not None or drift_b is not None) and stage != "inputs":
            if out.dtype == "float64":
                envelope = float64_envelope(self.bound("float32", stage, i, self.cost), key, drift, drift_b)
            else:
                envelope = _envelope(model, (drift or {}).get(key, 0.0), (drift_b or {}).get(key, 0.0),
                                     None if cond is None else cond.get(key))
            # the drifts are relative to the tensor's own running scale: the same absolute envelope
            envelope = envelope * own / scale if envelope is not None and scale > 0 else envelope
        limit = max(model, envelope or 0.0)
        d = tensor_diff(i, stage, name, shape, max_abs, rel, idx, va, vb, scale, limit, model, envelope, summary,
                        operands or None, nonfinite)
        cur = out.worst.get(key)
        if cur is None or (d.units, d.max_rel) > (cur.units, cur.max_rel):
            out.worst[key] = d
        if rel > out.max_rel.get(stage, 0.0) or (rel != rel):
            out.max_rel[stage] = rel if rel == rel else math.inf
        return d

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
    """Compare ``b`` against the reference ``a`` (two traces: :class:`~parity.trace.memory.Trace`, or steps read lazily).

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
    cmp = Comparator(a.manifest, b.manifest, cost=cost, bound=bound, stages=stages, keep=keep,
                     initial=(getattr(a, "initial", None), getattr(b, "initial", None)))
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
