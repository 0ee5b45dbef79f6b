"""Format results for people (a terminal table); the JSON lives in :mod:`parity.reportjson` (re-exported here)."""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from .compare import Comparison
from .reportjson import REPORT_FORMAT, case_status, comparison_dict, error_expected, exit_code, report_dict, strict_json, to_json
from .health import layer_health, ratio
from .runner import CaseResult
from .trace import stage_label

__all__ = [
    "format_table",
    "format_details",
    "format_health",
    "format_comparison",
    "format_not_run",
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


def _clip(text: str, width: int = 90) -> str:
    """A long message in a table cell (shown whole below the table)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def case_rows(result: CaseResult, not_run: Mapping[str, str] | None = None) -> list[list[str]]:
    """Return the table rows of one case: one per compared pair and dtype, refusal, crash or port not run."""
    case = result.case
    rows = []
    for dtype, errors in result.errors.items():
        for port, err in errors.items():
            where = getattr(err, "where", "")
            if case.expect == "error" and error_expected(result, port, err):
                verdict, last = "refused (expected)", err.phase
            elif case.expect == "error":
                verdict, last = "WRONG REFUSAL", f"expected {case.expected_refusal(port) or 'a stated refusal'}"
            else:
                verdict, last = "CRASH", err.phase + (f" at {where}" if where else "")
            rows.append([case.name, port, dtype, "-", _clip(f"{err.exc_type}: {err.exc_message}"), verdict, last])
    if case.expect == "error":
        for dtype, traces in result.traces.items():
            for port, trace in (traces or {}).items():
                steps = str(getattr(trace, "n_steps", None) or len(getattr(trace, "steps", ()) or ()))
                rows.append([case.name, port, dtype, steps, "trained without refusing", "NOT REFUSED",
                             f"expected {case.expected_refusal(port) or 'a refusal'}"])
    if not_run and not result.ports:
        rows.append([case.name, "-", "-", "-", "no port could run (see 'Not run' below)", "not run", "-"])
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


def format_not_run(not_run: Mapping[str, Mapping[str, str]]) -> str:
    """The ports that did not run, one line per case and reason (never counted as passing)."""
    lines = []
    for case, ports in (not_run or {}).items():
        by_reason: dict[str, list[str]] = {}
        for port, reason in ports.items():
            by_reason.setdefault(reason, []).append(port)
        lines += [f"{case}: {', '.join(p)} not run: {reason}" for reason, p in by_reason.items()]
    return "\n".join(lines)


def format_table(results: Sequence[CaseResult], not_run: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The main table: case | ports compared | dtype | steps | worst error per stage | verdict | first divergence."""
    header = ["case", "ports compared", "dtype", "steps", "worst relative error per stage", "verdict", "first divergence"]
    rows = [row for r in results for row in case_rows(r, (not_run or {}).get(r.case.name))]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header[:-1])] + [0]
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
                right = {p: e for p, e in errors.items() if error_expected(r, p, e)}
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
