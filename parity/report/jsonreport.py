"""The JSON report (``--json``): strict JSON, ``format`` 1, described by ``docs/report-schema.json``.

Each case's status and the command's exit code come from :mod:`parity.run.result`.
Non-finite numbers are the strings "inf", "-inf", "nan" (strict parsers reject Infinity/NaN).
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

from parity._version import __version__
from parity.comparison.comparator import Comparison
from parity.run.result import CaseResult, case_status, error_expected, exit_code
from parity.report.series import error_map, health_series
from parity.trace.memory import STAGES, stage_label

__all__ = [
    "REPORT_FORMAT",
    "report_dict",
    "comparison_dict",
    "to_json",
    "strict_json",
]

#: The version of the JSON report's layout (docs/report-schema.json). Bumped on any change
#: that removes or renames a field or changes its meaning; adding a field keeps it.
REPORT_FORMAT = 1

# -- JSON -----------------------------------------------------------------------------------


def _num(x) -> float | str | None:
    """A JSON number, or "inf" / "-inf" / "nan" for the non-finite (strict JSON has none)."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def _plain(o):
    """Turn numpy values, tuples and non-finite floats into strict-JSON values, recursively."""
    import numpy as np

    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, set, frozenset)):
        return [_plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return _plain(o.tolist())
    if isinstance(o, np.generic):
        return _plain(o.item())
    if isinstance(o, bool) or o is None or isinstance(o, (int, str)):
        return o
    if isinstance(o, float):
        return _num(o)
    if hasattr(o, "items"):  # mappingproxy and the like
        return {str(k): _plain(v) for k, v in o.items()}
    return str(o)


def strict_json(obj) -> str:
    """Serialize as strict JSON (no NaN/Infinity: non-finite numbers become strings)."""
    return json.dumps(_plain(obj), indent=1, allow_nan=False)


def _tensor_diff(d) -> dict:
    return {
        "step": d.step,
        "stage": d.stage,
        "tensor": d.name,
        "index": list(d.index),
        "a_value": _num(d.a_value),
        "b_value": _num(d.b_value),
        "max_abs": _num(d.max_abs),
        "max_rel": _num(d.max_rel),
        "scale": _num(d.scale),
        "bound": _num(d.bound),
        "units_of_bound": _num(d.units),
        "verdict": d.verdict,
        "model_bound": _num(getattr(d, "model_bound", None)),
        "envelope": _num(getattr(d, "envelope", None)),
        "from_summaries": bool(getattr(d, "summary", False)),
        "operand_scale": _num(getattr(d, "operand_scale", None)),
        "nonfinite": int(getattr(d, "nonfinite", 0)),
    }


def _nonfinite(nf) -> dict | None:
    """A run's first NaN or inf (:class:`~parity.comparison.records.NonFinite`), or None."""
    if nf is None:
        return None
    return {"step": nf.step, "stage": nf.stage, "tensor": nf.name, "port": nf.port, "index": list(nf.index),
            "value": _num(nf.value), "count": nf.count}


def _divergence(d, detail: bool = True) -> dict:
    out = {"step": d.step, "stage": d.stage, "tensor": d.name, "kind": d.kind, "detail": d.detail}
    if detail:
        t = d.diff
        out.update(
            {
                "index": list(t.index) if t is not None else None,
                "a_value": _num(t.a_value) if t is not None else None,
                "b_value": _num(t.b_value) if t is not None else None,
                "max_abs": _num(t.max_abs) if t is not None else None,
                "max_rel": _num(t.max_rel) if t is not None else None,
                "bound": _num(t.bound) if t is not None else None,
                "units_of_bound": _num(t.units) if t is not None else None,
            }
        )
    return out


def comparison_dict(c: Comparison, diagnoses=(), *, expect: str = "match", downstream: int = 20) -> dict:
    """One comparison as a JSON object (docs/report-schema.json, ``comparison``)."""
    divs = c.divergences()
    first = c.first_divergence
    worst = c.worst_by_stage()
    # per (stage, tensor) over the whole run (a streamed comparison keeps only some steps' diffs)
    per_tensor = list(getattr(c, "worst", {}).values()) or list(c.diffs)
    per_tensor.sort(key=lambda d: STAGES.index(d.stage) if d.stage in STAGES else len(STAGES))
    margin = max((d.units for d in per_tensor), default=0.0)
    seen = {d.stage for d in per_tensor} | {i.stage for i in c.issues if i.kind != "steps"}
    compared = [s for s in STAGES if s in seen]
    n_div = getattr(c, "n_semantic", None)
    n_div = len(divs) if n_div is None else n_div + len(c.issues) + getattr(c, "n_nonfinite", 0)
    series = {stage: [_num(v) for v in values] for stage, values in (getattr(c, "series", None) or {}).items()}
    if first is None:
        diag = {"status": "none", "summary": "no divergence", "pitfalls": []}
    elif diagnoses:
        diag = {
            "status": "named",
            "summary": f"likely {diagnoses[0].pitfall}",
            "pitfalls": [{"pitfall": d.pitfall, "score": _num(d.score), "evidence": d.evidence} for d in diagnoses],
        }
    else:
        diag = {
            "status": "unknown",
            "summary": f"unknown: first divergence at step {first.step}, {stage_label(first.stage)}, {first.name}",
            "pitfalls": [],
        }
    behaved = (not c.ok) if expect == "diverge" else c.ok
    return {
        "pair": c.pair,
        "a": c.a.get("port", "?"),
        "b": c.b.get("port", "?"),
        "dtype": c.dtype,
        "steps": c.steps,
        "verdict": c.verdict,
        "ok": c.ok,
        "expect": "diverge" if expect == "diverge" else "match",
        "behaved": behaved,
        "margin_of_bound": _num(margin),
        "stages_compared": compared,
        "stages_skipped": [{"stage": s, "only_in": port} for s, port in c.skipped],
        "worst_by_stage": [_tensor_diff(worst[s]) for s in worst],
        "worst_by_tensor": [_tensor_diff(d) for d in per_tensor],
        "series": series,
        "kept_steps": [int(k) for k in getattr(c, "kept_steps", None) or []],
        "first_divergence": None if first is None else _divergence(first),
        "divergences": n_div,
        "downstream": [_divergence(d, detail=False) for d in divs if d is not first][:downstream],
        "structure_issues": [
            {"step": i.step, "stage": i.stage, "tensor": i.name, "kind": i.kind, "detail": i.detail} for i in c.issues
        ],
        "diagnosis": diag,
        "manifests": {"a": _plain(c.a), "b": _plain(c.b)},
        "heatmap": error_map(c),
        "nonfinite": {side: _nonfinite(getattr(c, "nonfinite", {}).get(side)) for side in ("a", "b")},
    }


def _error_dict(result: CaseResult, dtype: str, port: str, err) -> dict:
    expected = result.case.expected_refusal(port) if result.case.expect == "error" else None
    frames = getattr(err, "frames", None) or []
    last = frames[-1] if frames else None
    return {
        "port": port,
        "dtype": dtype,
        "phase": getattr(err, "phase", "?"),
        "exc_type": getattr(err, "exc_type", type(err).__name__),
        "message": getattr(err, "exc_message", str(err)),
        "where": None if last is None else {"file": last.filename, "line": last.lineno, "function": last.name},
        "frames": [{"file": f.filename, "line": f.lineno, "function": f.name, "code": (f.line or "").strip()} for f in frames],
        "expected_refusal": None if expected is None else {"exc_type": expected.exc_type, "pattern": expected.pattern},
        "as_expected": error_expected(result, port, err),
    }


def _health(traces: Mapping) -> dict:
    from parity.trace.health import summarize

    out = {}
    for port, trace in traces.items():
        try:
            rows = summarize(trace)
        except Exception:  # noqa: BLE001 -- health is a summary: a trace without gradients has none
            rows = {}
        if rows:
            out[port] = [
                {"tensor": name, **{k: _num(v) for k, v in stats.items()}} for name, stats in rows.items()
            ]
    return out


def _case_dict(
    result: CaseResult,
    diagnoses: Mapping,
    *,
    not_run: Mapping[str, str] = {},
    settings: Mapping[str, Sequence[str]] = {},
    user_ports: Mapping[str, str] = {},
    registered: bool = True,
) -> dict:
    case = result.case
    by_dtype: dict[str, dict] = {}
    dtypes = list(dict.fromkeys(list(result.traces) + list(result.errors) + [c.dtype for c in result.comparisons]))
    for dtype in dtypes:
        traces = result.traces.get(dtype, {}) or {}
        errs = result.errors.get(dtype, {}) or {}
        by_dtype[dtype] = {
            "dtype": dtype,
            "ports_ran": [p for p in result.ports if p in traces or p in errs],
            "errors": [_error_dict(result, dtype, p, e) for p, e in errs.items()],
            "settings_check": list(settings.get(dtype, ())),
            "health": _health(traces),
            "series": health_series(traces),
            "comparisons": [],
        }
    for i, c in enumerate(result.comparisons):
        entry = by_dtype.setdefault(
            c.dtype,
            {"dtype": c.dtype, "ports_ran": [], "errors": [], "settings_check": [], "health": {}, "series": {}, "comparisons": []},
        )
        entry["comparisons"].append(comparison_dict(c, diagnoses.get((case.name, i), ()), expect=case.expect))
    status = case_status(result)
    return {
        "case": case.name,
        "registered": registered,
        "title": case.title if registered else None,
        "source": case.source if registered else None,
        "module": case.module if registered else None,
        "expect": case.expect,
        "steps": case.steps if registered else None,
        "tags": list(case.tags) if registered else [],
        "status": status,
        "passed": status == "passed",
        "ports": result.ports,
        "ports_not_run": [{"port": p, "reason": r} for p, r in not_run.items()],
        "user_ports": dict(user_ports),
        "seconds": {k: _num(v) for k, v in result.seconds.items()},
        "dtypes": list(by_dtype.values()),
    }


def _environment() -> dict:
    from importlib import metadata

    packages = {}
    for name in ("numpy", "tensorflow", "tensorflow-cpu", "tf-keras", "keras", "torch"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages}


def report_dict(
    results: Sequence[CaseResult],
    diagnoses: Mapping,
    extra: Mapping | None = None,
    *,
    kind: str = "run",
    command: Sequence[str] | None = None,
    not_run: Mapping[str, Mapping[str, str]] | None = None,
    settings: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    user_ports: Mapping[str, str] | None = None,
    frameworks: Mapping | None = None,
    notes: Sequence[str] = (),
    unregistered: Iterable[str] = (),
    code: int | None = None,
) -> dict:
    """The whole report as one JSON-ready dict (the layout docs/report-schema.json describes).

    Args:
        results: one :class:`CaseResult` per case.
        diagnoses: (case name, comparison index) -> diagnoses, most likely first.
        extra: more top-level fields (``pitfalls``, ``wall_seconds``).
        kind: "run", "check", "compare" or "diff".
        command: the command line.
        not_run: case -> port -> why it did not run.
        settings: case -> dtype -> settings-check warnings.
        user_ports: port -> the user's file (``check``).
        frameworks: {"selected": [...], "not_installed": {fw: reason}}.
        notes: the notes the command printed.
        unregistered: cases (of ``compare``'s traces) that are not in the registry.
        code: the exit code (computed from the statuses when None).
    """
    from parity.errors import EXIT_CODES

    not_run = not_run or {}
    settings = settings or {}
    unregistered = set(unregistered)
    cases = [
        _case_dict(
            r,
            diagnoses,
            not_run=not_run.get(r.case.name, {}),
            settings=settings.get(r.case.name, {}),
            user_ports=user_ports or {},
            registered=r.case.name not in unregistered,
        )
        for r in results
    ]
    statuses = [c["status"] for c in cases]
    if code is None:
        code = exit_code(statuses)
    extra = dict(extra or {})
    out = {
        "format": REPORT_FORMAT,
        "kind": kind,
        "parity_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": list(command if command is not None else sys.argv[1:]),
        "exit_code": code,
        "exit_meaning": EXIT_CODES.get(code, ""),
        "environment": _environment(),
        "frameworks": _plain(frameworks or {"selected": None, "not_installed": {}}),
        "notes": list(notes),
        "summary": {
            "cases": len(cases),
            "passed": [c["case"] for c in cases if c["status"] == "passed"],
            "failed": [c["case"] for c in cases if c["status"] == "failed"],
            "crashed": [c["case"] for c in cases if c["status"] == "crashed"],
            "not_run": [c["case"] for c in cases if c["status"] == "not_run"],
            "wall_seconds": _num(extra.pop("wall_seconds", None)),
        },
        "cases": cases,
    }
    if "pitfalls" in extra:
        out["pitfalls"] = _plain(extra.pop("pitfalls"))
        out["pitfall_seconds"] = _num(extra.pop("pitfall_seconds", None))
    if "facts" in extra:  # parity diff: both programs' facts and what the comparison does not cover
        out["facts"] = _plain(extra.pop("facts"))
    if extra:
        out["extra"] = _plain(extra)
    return out


def to_json(results: Sequence[CaseResult], diagnoses: Mapping, extra: Mapping | None = None, **kwargs) -> str:
    """Everything in the table and more, as strict JSON (see :func:`report_dict` for the arguments)."""
    return strict_json(report_dict(results, diagnoses, extra, **kwargs))
