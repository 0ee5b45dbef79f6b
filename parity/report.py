"""Format results for people (a terminal table) and machines (JSON). Computation lives elsewhere."""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

from . import __version__
from .compare import Comparison
from .health import layer_health, ratio
from .runner import CaseResult
from .trace import STAGES, stage_label

__all__ = [
    "format_table",
    "format_details",
    "format_health",
    "format_comparison",
    "case_rows",
    "case_status",
    "exit_code",
    "report_dict",
    "comparison_dict",
    "to_json",
    "strict_json",
    "REPORT_FORMAT",
    "STAGE_ABBREV",
]

#: The version of the JSON report's layout (docs/report-schema.json). Bumped on any change
#: that removes or renames a field or changes its meaning; adding a field keeps it.
REPORT_FORMAT = 1

STAGE_ABBREV = {
    "inputs": "in",
    "forward": "fwd",
    "loss": "loss",
    "gradients": "grad",
    "processed_gradients": "pgrad",
    "learning_rate": "lr",
    "parameters": "param",
    "slots": "slot",
    "state": "state",
    "constrained": "cons",
}


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    return f"{x:.0e}"


def _worst(cmp: Comparison) -> str:
    return " ".join(f"{STAGE_ABBREV[s]} {_fmt(d.max_rel)}" for s, d in cmp.worst_by_stage().items())


def _verdict(cmp: Comparison) -> str:
    v = cmp.verdict
    if v == "rounding" and cmp.dtype == "float32":
        units = max((d.units for d in cmp.diffs), default=0.0)
        return f"rounding ({units:.2g} of bound)"
    return {"semantic": "SEMANTIC", "structure": "STRUCTURE"}.get(v, v)


def _first(cmp: Comparison) -> str:
    first = cmp.first_divergence
    return first.describe() if first else "-"


def case_rows(result: CaseResult, not_run: Mapping[str, str] | None = None) -> list[list[str]]:
    """Return the table rows of one case: one per compared pair and dtype, refusal, crash or port not run."""
    case = result.case
    rows = []
    for dtype, errors in result.errors.items():
        for port, err in errors.items():
            where = getattr(err, "where", "")
            if case.expect == "error" and _error_expected(result, port, err):
                verdict, last = "refused (expected)", err.phase
            elif case.expect == "error":
                verdict, last = "WRONG REFUSAL", f"expected {case.expected_refusal(port) or 'a stated refusal'}"
            else:
                verdict, last = "CRASH", err.phase + (f" at {where}" if where else "")
            rows.append([case.name, port, dtype, "-", f"{err.exc_type}: {err.exc_message}", verdict, last])
    if case.expect == "error":
        for dtype, traces in result.traces.items():
            for port, trace in (traces or {}).items():
                steps = str(len(getattr(trace, "steps", ()) or ()))
                rows.append([case.name, port, dtype, steps, "trained without refusing", "NOT REFUSED",
                             f"expected {case.expected_refusal(port) or 'a refusal'}"])
    for port, reason in (not_run or {}).items():
        rows.append([case.name, port, "-", "-", reason, "not run", "-"])
    for cmp in result.comparisons:
        verdict = _verdict(cmp)
        if case.expect == "diverge":
            verdict = ("caught: " if not cmp.ok else "MISSED: ") + verdict
        rows.append([case.name, cmp.pair, cmp.dtype, str(cmp.steps), _worst(cmp), verdict, _first(cmp)])
    return rows


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], widths: Sequence[int]) -> str:
    def clip(text: str, width: int) -> str:
        return text if width <= 0 or len(text) <= width else text[: width - 1] + "…"

    lines = []
    for row in [header, *rows]:
        cells = [clip(str(c), w) for c, w in zip(row, widths)]
        lines.append("  ".join(c.ljust(w) if w > 0 else c for c, w in zip(cells, widths)).rstrip())
    lines.insert(1, "-" * min(len(lines[0]) + 20, 160))
    return "\n".join(lines)


def format_table(results: Sequence[CaseResult], not_run: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The main table: case | ports compared | dtype | steps | worst error per stage | verdict | first divergence."""
    header = ["case", "ports compared", "dtype", "steps", "worst relative error per stage", "verdict", "first divergence"]
    rows = [row for r in results for row in case_rows(r, (not_run or {}).get(r.case.name))]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header[:-1])] + [0]
    widths[4] = min(widths[4], 90)  # a long refusal message is clipped here and shown whole below the table
    return _table(header, rows, widths)


def format_comparison(cmp: Comparison, diagnoses=(), limit: int = 5) -> str:
    """Describe one comparison's divergence: where first, how big, what it is likely to be."""
    lines = [f"{cmp.a.get('case')}: {cmp.pair} ({cmp.dtype}): {cmp.verdict}"]
    for stage, port in cmp.skipped:
        lines.append(f"  not compared: {stage_label(stage)} (only {port} reports it)")
    divs = cmp.divergences()
    if not divs:
        worst = max(cmp.diffs, key=lambda d: d.units, default=None)
        if worst is not None and worst.max_abs:
            lines.append(f"  largest difference: step {worst.step}, {stage_label(worst.stage)}, {worst.describe()} = {worst.units:.2g} of the bound")
        return "\n".join(lines)
    first = divs[0]
    lines.append(f"  first divergence: {first.describe()} [{first.kind}]")
    if first.diff is not None:
        bound = first.diff.bound
        lines.append(f"  error {first.diff.max_rel:.3g} relative, bound {bound:.3g} ({cmp.dtype}): {'semantic' if first.kind == 'semantic' else first.kind}")
    if len(divs) > 1:
        lines.append(f"  then {len(divs) - 1} more (downstream), e.g.:")
        for d in divs[1:limit]:
            lines.append(f"    step {d.step}, {stage_label(d.stage)}, {d.detail}")
    if diagnoses:
        lines.append("  likely pitfalls (most likely first):")
        for d in diagnoses:
            lines.append(f"    {d.pitfall}: {d.evidence}   (parity explain {d.pitfall})")
    else:
        lines.append("  pitfall: unknown (no catalogued signature matches; the location above stands)")
    return "\n".join(lines)


def format_details(results: Sequence[CaseResult], diagnoses: dict) -> str:
    """Every divergence, refusal and crash, with diagnoses and the port's file and line."""
    out = []
    for r in results:
        for dtype, errors in r.errors.items():
            if not errors:
                continue
            if r.case.expect == "error":
                right = {p: e for p, e in errors.items() if _error_expected(r, p, e)}
                if right:
                    refusals = "; ".join(f"{p}: {e.exc_type}: {e.exc_message}" for p, e in right.items())
                    out.append(f"{r.case.name} ({dtype}): each framework refuses, in its own words: {refusals}")
                for p, e in errors.items():
                    if p not in right:
                        out.append(
                            f"{r.case.name} ({dtype}): {p} must refuse with {r.case.expected_refusal(p) or '(no refusal stated for this port)'}"
                            f"; it raised {e.exc_type}: {e.exc_message} during {e.phase}"
                        )
                        out += [f"    {line}" for line in getattr(e, "traceback_lines", lambda: [])()]
            else:
                for p, e in errors.items():
                    out.append(f"{r.case.name} ({dtype}): {p} failed during {e.phase}: {e.exc_type}: {e.exc_message}")
                    out += [f"    {line}" for line in getattr(e, "traceback_lines", lambda: [])()]
        for i, cmp in enumerate(r.comparisons):
            if not cmp.ok:
                out.append(format_comparison(cmp, diagnoses.get((r.case.name, i), ())))
            else:  # a stage one port does not report is not compared: say so even when all else agrees
                out += [f"{r.case.name}: {cmp.pair} ({cmp.dtype}): not compared: {stage_label(s)} (only {p} reports it)"
                        for s, p in cmp.skipped]
    return "\n".join(out)


def format_health(results: Sequence[CaseResult], dtype: str = "float64") -> str:
    """Gradient health per layer for cases tagged seed000 or health, per framework, and seed 000's finding."""
    lines = []
    first_var: dict[str, dict[str, float]] = {}
    for r in results:
        if not ({"seed000", "health"} & set(r.case.tags)):
            continue
        traces = r.traces.get(dtype, {})
        shown = [p for p in traces if ":" not in p and p != "numpy"]
        if not shown:
            continue
        lines.append(f"{r.case.name} ({r.case.title}; {dtype}, mean over {r.case.steps} steps)")
        lines.append(f"  {'variable':16s}" + "".join(f"  {p + ' |g|':>11s} {p + ' var(g)':>13s} {p + ' |dw|/|w|':>14s}" for p in shown))
        per = {p: {h.name: h for h in layer_health(traces[p])} for p in shown}
        for name in per[shown[0]]:
            cells = ""
            for p in shown:
                h = per[p].get(name)
                if h is None:
                    cells += f"  {'-':>11s} {'-':>13s} {'-':>14s}"
                    continue
                cells += f"  {h.mean('grad_norm'):11.3e} {h.mean('grad_var'):13.3e} {h.mean('update_ratio'):14.3e}"
            lines.append(f"  {name:16s}{cells}")
        for p in shown:
            names = list(per[p])
            if names:
                first_var.setdefault(r.case.name, {})[p] = per[p][names[0]].mean("grad_var")
    finding = _seed000_finding(first_var)
    if finding:
        lines += ["", *finding]
    return "\n".join(lines)


def _seed000_finding(first_var: dict[str, dict[str, float]]) -> list[str]:
    two, three = first_var.get("seed000_encoder2_tiny"), first_var.get("seed000_encoder3_tiny")
    if not (two and three):
        return []
    out = ["Seed 000's finding, measured here (first-layer W gradient variance, mean over the run):"]
    for p in two:
        if p in three:
            line = f"  {p}: 1-16-1 tiny init {two[p]:.3g}; 1-16-16-1 tiny init {three[p]:.3g} ({ratio(two[p], three[p]):.3g}x smaller)"
            xav = first_var.get("seed000_encoder3_xavier", {}).get(p)
            if xav is not None:
                line += f"; 1-16-16-1 Xavier + bias 0.1 {xav:.3g} ({ratio(xav, three[p]):.3g}x the tiny-init value)"
            out.append(line)
    return out



# -- status and exit code -------------------------------------------------------------------

#: case status -> the exit code it contributes (the command exits with the highest).
_STATUS_CODE = {"passed": 0, "not_run": 0, "failed": 1, "crashed": 3}


def _errors_of(result: CaseResult) -> list[tuple[str, str, Any]]:
    return [(dtype, port, err) for dtype, errs in result.errors.items() for port, err in errs.items()]


def _error_expected(result: CaseResult, port: str, err) -> bool:
    from .cases import refusal_matches

    return refusal_matches(result.case, port, err)


def case_status(result: CaseResult) -> str:
    """"passed", "failed" (a divergence, or a must-diverge / must-refuse case that did not),
    "crashed" (a port raised, exited or broke the protocol, or refused in other words than
    the case states) or "not_run" (no port of it could run: frameworks not installed or left out)."""
    case = result.case
    errors = _errors_of(result)
    if any(not _error_expected(result, port, err) for _, port, err in errors):
        return "crashed"
    if case.expect == "error":
        if not errors and not any(result.traces.values()):
            return "not_run"
        return "passed" if result.passed else "failed"
    if not result.comparisons:
        return "not_run"
    if case.expect == "diverge":
        return "passed" if any(not c.ok for c in result.comparisons) else "failed"
    return "passed" if all(c.ok for c in result.comparisons) else "failed"


def exit_code(statuses: Iterable[str]) -> int:
    """The command's exit code for these case statuses (see :mod:`parity.errors`)."""
    return max((_STATUS_CODE[s] for s in statuses), default=0)


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
    }


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
    first = divs[0] if divs else None
    worst = c.worst_by_stage()
    margin = max((d.units for d in c.diffs), default=0.0)
    compared = [s for s in STAGES if s in {d.stage for d in c.diffs} | {i.stage for i in c.issues if i.kind != "steps"}]
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
        "first_divergence": None if first is None else _divergence(first),
        "divergences": len(divs),
        "downstream": [_divergence(d, detail=False) for d in divs[1 : 1 + downstream]],
        "structure_issues": [
            {"step": i.step, "stage": i.stage, "tensor": i.name, "kind": i.kind, "detail": i.detail} for i in c.issues
        ],
        "diagnosis": diag,
        "manifests": {"a": _plain(c.a), "b": _plain(c.b)},
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
        "as_expected": _error_expected(result, port, err),
    }


def _health(traces: Mapping) -> dict:
    from .health import summarize

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
            "comparisons": [],
        }
    for i, c in enumerate(result.comparisons):
        entry = by_dtype.setdefault(
            c.dtype,
            {"dtype": c.dtype, "ports_ran": [], "errors": [], "settings_check": [], "health": {}, "comparisons": []},
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
    from .errors import EXIT_CODES

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
    if extra:
        out["extra"] = _plain(extra)
    return out


def to_json(results: Sequence[CaseResult], diagnoses: Mapping, extra: Mapping | None = None, **kwargs) -> str:
    """Everything in the table and more, as strict JSON (see :func:`report_dict` for the arguments)."""
    return strict_json(report_dict(results, diagnoses, extra, **kwargs))
