"""What a comparison measures: one tensor's difference, a structure issue, a divergence, a comparison.

The data types of :mod:`parity.comparison.comparator` (which re-exports them) and the two elementwise
measures: :func:`diff_arrays` (full tensors) and :func:`diff_summaries` (summaries, a lower
bound of the true difference: :mod:`parity.trace.summary`).
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from parity.comparison.extremes import _extremes, shape_of
from parity.trace.summary import summarize
from parity.trace.memory import STAGES, stage_label

__all__ = ["TensorDiff", "StructureIssue", "Divergence", "NonFinite", "Comparison", "diff_arrays", "diff_arrays_checked",
           "diff_summaries", "first_nonfinite", "layer_of", "divergence_key"]

_STAGE_ORDER = {s: i for i, s in enumerate(STAGES)}
_PHASE = re.compile(r"^phase(\d+)/")


def _phase(d) -> int:
    """A program with several optimizers names phase k's tensors phase<k>/... (docs/own-model.md): a step's
    phases in time order; forward belongs to phase 1's start (0), state / constrained come after the last."""
    m = _PHASE.match(d.name or "")
    if m:
        return int(m.group(1))
    return 1 << 20 if d.stage in ("state", "constrained") else 0

@dataclass(frozen=True)
class TensorDiff:
    """The difference of one tensor at one step and stage.

    ``max_rel`` is ``max_abs`` divided by the tensor's scale: the largest magnitude it has
    had up to this step in either run, the case's floor for the stage, or (stages after the
    loss) the operand scale, the largest magnitude of the stage so far (``operand_scale``: a
    zero that rounding computes as 1e-18 is measured against what it was computed from;
    docs/tolerance.md); ``index`` is the worst element; ``bound`` is the limit the verdict uses:
    ``max(model_bound, envelope)``. ``model_bound`` is the written error model
    (:mod:`parity.comparison.tolerance`); ``envelope`` the measured float32 envelope (None without a
    float64 run), in units of ``scale``. ``summary``: measured from tensor summaries, a lower
    bound of the true difference (:mod:`parity.trace.summary`). ``nonfinite``: how many elements
    are NaN or inf in both runs alike (they compare equal, and are a verdict of their own).
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
    operand_scale: float | None = None
    nonfinite: int = 0

    @property
    def verdict(self) -> str:
        """"exact", "rounding" (within the bound), "semantic", or "nonfinite" (NaN/inf alike in both runs)."""
        if self.max_abs != 0.0 and not self.max_rel <= self.bound:
            return "semantic"
        if self.nonfinite:
            return "nonfinite"
        return "exact" if self.max_abs == 0.0 else "rounding"

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
        if self.verdict == "nonfinite":
            return f"{self.name}: {self.nonfinite} element(s) non-finite in both runs alike (e.g. [{idx}] {self.a_value:.9g})"
        return (
            f"{self.name}[{idx}] {self.a_value:.9g} vs {self.b_value:.9g} "
            f"(abs {self.max_abs:.3g}, rel {self.max_rel:.3g}{', from summaries' if self.summary else ''})"
        )


_TENSOR_DIFF_FIELDS = tuple(TensorDiff.__dataclass_fields__)


def tensor_diff(*values) -> TensorDiff:
    """``TensorDiff(*values)`` (every field, in order) without the frozen dataclass's ``__init__``: one per tensor,
    pair and step (issue 21; the same object: its fields set, nothing else)."""
    d = object.__new__(TensorDiff)
    d.__dict__.update(zip(_TENSOR_DIFF_FIELDS, values))
    return d


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
    kind: str  # "semantic", "structure" or "nonfinite" (NaN or inf in both runs alike)
    detail: str
    diff: TensorDiff | None = None

    def describe(self) -> str:
        return f"step {self.step}, {stage_label(self.stage)}, {self.detail}"


@dataclass(frozen=True)
class NonFinite:
    """The first NaN or inf of one run: where (step, stage, tensor, element), what, and how many in that tensor."""

    step: int
    stage: str
    name: str
    port: str
    index: tuple[int, ...]
    value: float
    count: int

    def describe(self) -> str:
        idx = ",".join(map(str, self.index))
        return f"{self.port}: step {self.step}, {stage_label(self.stage)}, {self.name}[{idx}] = {self.value:g} ({self.count} non-finite)"


def first_nonfinite(x) -> tuple[int, tuple[int, ...], float] | None:
    """(how many, the first one's index, its value) of the NaN/inf elements of ``x``; None where all are finite.

    A summary (:mod:`parity.trace.summary`) tells only that its statistics are not finite: index (), count 1.
    """
    from parity.trace.summary import Summary

    if isinstance(x, Summary):
        if x.size and not np.all(np.isfinite(x.stats[:3])):
            bad = x.stats[:3][~np.isfinite(x.stats[:3])]
            return 1, (), float(bad[0])
        return None
    a = np.asarray(x)
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    flat = int(np.argmax(bad))
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape)) if a.ndim else ()
    return int(bad.sum()), index, float(a.flat[flat])


@lru_cache(maxsize=1 << 16)  # (asked for every tensor of every step and pair)
def layer_of(stage: str, name: str) -> str:
    """The layer a tensor belongs to: its name without the last component ("dense0/bias" -> "dense0",
    "fc.bias" -> "fc"); an optimizer slot is its variable's ("dense0/bias/m" -> "dense0"). "" for a
    variable outside any layer (a scalar ``shift``): its layer is the whole stage."""
    if stage == "slots" and "/" in name:
        name = name.rsplit("/", 1)[0]
    cut = max(name.rfind("/"), name.rfind("."))
    return name[:cut] if cut > 0 else ""


def divergence_key(d: Divergence, position: int):
    """The order of divergences: step, stage, then forward layers in recording order or the largest error first."""
    if d.stage == "forward" and d.diff is not None:
        # Ports record activations in network order: the earliest diverging layer is the
        # cause, later layers inherit its difference (seed 003: the BatchNorm output, not
        # the dropout after it that happens to differ more).
        return (d.step, _phase(d), _STAGE_ORDER["forward"], position)
    err = d.diff.units if d.diff else float("inf")
    return (d.step, _phase(d), _STAGE_ORDER.get(d.stage, 99), -err)


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
    n_nonfinite: int = 0  # tensor-steps NaN/inf alike in both runs
    nonfinite: dict[str, NonFinite] = field(default_factory=dict)  # "a"/"b" -> that run's first NaN or inf

    @property
    def pair(self) -> str:
        return f"{self.a.get('port', '?')} vs {self.b.get('port', '?')}"

    @property
    def steps(self) -> int:
        return min(self.a.get("steps", 0), self.b.get("steps", 0))

    def divergences(self) -> list[Divergence]:
        """The structure issues and the kept semantic differences, in comparison order."""
        out = [(Divergence(i.step, i.stage, i.name, "structure", i.describe()), -1) for i in self.issues]
        out += [(Divergence(d.step, d.stage, d.name, d.verdict, d.describe(), d), n) for n, d in enumerate(self.diffs)
                if d.verdict in ("semantic", "nonfinite")]
        return [d for d, _ in sorted(out, key=lambda t: divergence_key(*t))]

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
        """"structure", "semantic", "nonfinite" (NaN or inf alike in both runs), "rounding" (all within bounds) or "exact"."""
        if self.issues:
            return "structure"
        if self.n_semantic:
            return "semantic"
        if self.n_nonfinite:
            return "nonfinite"
        return "rounding" if self.n_rounding else "exact"

    @property
    def ok(self) -> bool:
        return self.verdict in ("exact", "rounding")


def _relative(max_abs: float, scale: float) -> float:
    if max_abs == 0.0:
        return 0.0
    if not math.isfinite(max_abs) or scale == 0.0:  # (math's: a float's, without numpy's call)
        return float("inf")
    return max_abs / scale


def diff_arrays(a: np.ndarray, b: np.ndarray) -> tuple[float, float, tuple[int, ...], float, float, float]:
    """:func:`_diff_arrays` without numpy's warnings: a run gone to inf or NaN is the user's; parity's
    measuring of it must not warn at parity's own lines (the user's own warnings are left alone)."""
    return diff_arrays_checked(a, b)[0]


def diff_arrays_checked(a, b) -> tuple[tuple[float, float, tuple[int, ...], float, float, float], bool]:
    """:func:`diff_arrays` and whether a non-finite value may be in either array (then look: :func:`first_nonfinite`).

    False is certain: the fast path's difference and extremes are finite only when every element is.
    """
    with np.errstate(**QUIET):
        return _diff_arrays(a, b)


#: The numpy error state :func:`diff_arrays` measures in (a run gone to inf or NaN warns nothing here); the
#: comparator and the drift enter it once per step and call :func:`_diff_arrays` (entering it costs ~5 us).
QUIET = {"invalid": "ignore", "over": "ignore"}


def _diff_arrays(a: np.ndarray, b: np.ndarray, remember: bool = False):
    """Return ((max_abs, max_rel, worst index, a at it, b at it, scale), maybe non-finite) for two same-shape arrays.

    Non-finite values count as equal only where both are the same non-finite value. ``remember``: the arrays are
    a step's, never written to (:func:`_extremes`: an array in several pairs has its extremes taken once).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.size == 0:
        return (0.0, 0.0, (), 0.0, 0.0, 0.0), False
    if a.dtype == b.dtype and a.dtype.kind in "biu" and np.array_equal(a, b):
        return (0.0, 0.0, (0,) * a.ndim, float(a.flat[0]), float(b.flat[0]), float(np.abs(a).max())), False
    if a.dtype == b.dtype and a.dtype.kind == "f":
        # Same float dtype: measure in it (one temporary, no float64 copies). A difference of
        # two float32 numbers is rounded at most once more (relative 2^-24): a measurement of
        # an error judged against bounds >= 4 eps32, and float64 is measured in float64.
        a64, b64 = a, b
        err = np.asarray(a64 - b64)
    else:  # (a float64 array as it is: the values are the same, without a copy; b's float64 copy is the
        # difference's buffer, and b64 is taken again where read: it is b's values, the cast is exact)
        a64 = a.astype(np.float64, copy=False)
        err = b.astype(np.float64)
        np.subtract(a64, err, out=err)
        b64 = None if remember and a.dtype.kind == b.dtype.kind == "f" else b.astype(np.float64, copy=False)
    np.abs(err, out=err)
    flat = int(np.argmax(err))  # a NaN anywhere is the argmax: then take the careful path
    max_abs = float(err.flat[flat])
    careful = not np.isfinite(max_abs)
    if not careful:
        if remember and a.dtype.kind == b.dtype.kind == "f":  # (each array's own extremes: the same numbers as a64's, b64's; the casts are exact)
            (hi_a, lo_a), (hi_b, lo_b) = _extremes(a), _extremes(b)
            scale = float(max(hi_a, -lo_a, hi_b, -lo_b))
        else:
            scale = float(max(a64.max(), -a64.min(), b64.max(), -b64.min()))
        careful = not np.isfinite(scale)  # (inf - inf is NaN: the argmax found it; this is belt and braces)
    if careful:
        a64, b64 = a64.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
        err = np.abs(a64 - b64)
        same_nonfinite = (~np.isfinite(a64) | ~np.isfinite(b64)) & ((a64 == b64) | (np.isnan(a64) & np.isnan(b64)))
        err = np.where(same_nonfinite, 0.0, err)
        err = np.where(np.isnan(err), np.inf, err)
        flat = int(np.argmax(err))
        max_abs = float(err.flat[flat])
        finite = np.isfinite(a64) & np.isfinite(b64)
        scale = float(max(np.max(np.abs(a64[finite]), initial=0.0), np.max(np.abs(b64[finite]), initial=0.0)))
    rel = _relative(max_abs, scale)
    index = tuple(int(i) for i in np.unravel_index(flat, a64.shape)) if a64.ndim else ()
    return (max_abs, rel, index, float(a64.flat[flat]), float((b if b64 is None else b64).flat[flat]), scale), careful


def _stat_err(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    with np.errstate(invalid="ignore"):
        err = np.abs(x - y)
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def diff_summaries(a, b) -> tuple[float, float, tuple[int, ...], float, float, float]:
    """Like :func:`diff_arrays` for summaries (or a summary and an array): a lower bound of max|a - b|."""
    from parity.trace.summary import sample_indices

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
