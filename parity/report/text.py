"""Format divergences, refusals and crashes for people; the case table and the health table live in
:mod:`parity.report.terminal`, the JSON in :mod:`parity.report.jsonreport` (re-exported here)."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from parity.comparison.comparator import Comparison
from parity.report.jsonreport import REPORT_FORMAT, comparison_dict, report_dict, strict_json, to_json
from parity.run.result import case_status, error_expected, exit_code
from parity.run.result import CaseResult
from parity.trace.memory import stage_label

__all__ = [
    "format_details",
    "format_comparison",
    "format_not_run",
    "format_nonfinite",
    "nonfinite_text",
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
    "regularization": "reg",
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


def nonfinite_text(cmp: Comparison) -> str:
    """"both NaN", "both inf" or "both NaN/inf": what the two runs' first non-finite values are."""
    firsts = [nf for nf in cmp.nonfinite.values()]
    if firsts and all(math.isnan(nf.value) for nf in firsts):
        return "both NaN"
    if firsts and all(math.isinf(nf.value) for nf in firsts):
        return "both inf"
    return "both NaN/inf"


def _verdict(cmp: Comparison) -> str:
    v = cmp.verdict
    if v == "rounding" and cmp.dtype == "float32":
        units = max((d.units for d in cmp.diffs), default=0.0)
        return f"rounding ({units:.2g} of bound)"
    if v == "nonfinite":
        return f"NON-FINITE ({nonfinite_text(cmp)})"
    return {"semantic": "SEMANTIC", "structure": "STRUCTURE"}.get(v, v)


def format_nonfinite(cmp: Comparison) -> list[str]:
    """One line per run that went non-finite: where its first NaN or inf is (step, stage, tensor, element)."""
    return [f"  first non-finite value, {'reference' if side == 'a' else 'port'} {nf.describe()}"
            for side, nf in sorted(cmp.nonfinite.items())]


def format_not_run(not_run: Mapping[str, Mapping[str, str]]) -> str:
    """The ports that did not run, one line per case and reason (never counted as passing)."""
    lines = []
    for case, ports in (not_run or {}).items():
        by_reason: dict[str, list[str]] = {}
        for port, reason in ports.items():
            by_reason.setdefault(reason, []).append(port)
        lines += [f"{case}: {', '.join(p)} not run: {reason}" for reason, p in by_reason.items()]
    return "\n".join(lines)


def format_comparison(cmp: Comparison, diagnoses=(), limit: int = 5) -> str:
    """Describe one comparison's divergence: where first, how big, what it is likely to be."""
    verdict = f"nonfinite ({nonfinite_text(cmp)} at the same place)" if cmp.verdict == "nonfinite" else cmp.verdict
    lines = [f"{cmp.a.get('case')}: {cmp.pair} ({cmp.dtype}): {verdict}"]
    lines += format_nonfinite(cmp)
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
    if first.kind == "nonfinite":
        lines.append("  both runs hold NaN or inf at the same elements: they compare equal, but nothing after them is checked")
    elif first.diff is not None:
        bound = first.diff.bound
        lines.append(f"  error {first.diff.max_rel:.3g} relative, bound {bound:.3g} ({cmp.dtype}): {'semantic' if first.kind == 'semantic' else first.kind}")
    if len(divs) > 1:
        lines.append(f"  then {len(divs) - 1} more (downstream), e.g.:")
        for d in divs[1:limit]:
            lines.append(f"    step {d.step}, {stage_label(d.stage)}, {d.detail}")
    if diagnoses:
        lines.append("  likely pitfalls (most likely first):")
        from parity.pitfalls.registry import all_pitfalls

        catalogued = {p.name for p in all_pitfalls()}
        for d in diagnoses:  # a name from the programs' facts (weight-decay, optimizer-rho ...) has no catalogue entry
            explain = f"   (parity explain {d.pitfall})" if d.pitfall in catalogued else ""
            lines.append(f"    {d.pitfall}: {d.evidence}{explain}")
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
