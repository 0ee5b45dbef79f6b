"""A short Markdown summary of a report (``--markdown FILE``): for a CI job summary or a PR comment.

Rendered from the JSON report dict (:func:`parity.report.jsonreport.report_dict`). One line of
counts, then one table row per case, failing cases first; at most ``limit`` rows (the rest
counted), each with its first divergence and the diagnosis' first name.
"""

from __future__ import annotations

from typing import Mapping

from parity.trace.memory import stage_label

__all__ = ["render_markdown_summary"]

_ICON = {"passed": "✅", "failed": "❌", "crashed": "💥", "not_run": "➖"}
_ORDER = {"crashed": 0, "failed": 1, "passed": 2, "not_run": 3}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _case_row(case: Mapping) -> str:
    comps = [c for d in case.get("dtypes", []) for c in d.get("comparisons", [])]
    verdicts = ", ".join(sorted({f"{c['dtype']} {c['verdict']}" for c in comps})) or "-"
    bad = next((c for c in comps if not c.get("behaved", c.get("ok"))), None)
    shown = bad or next((c for c in comps if c.get("first_divergence")), None)
    first = diag = "-"
    if shown and shown.get("first_divergence"):
        f = shown["first_divergence"]
        first = f"{shown['pair']} {shown['dtype']}: step {f['step']}, {stage_label(f['stage'])}, `{f['tensor']}`"
        d = shown.get("diagnosis") or {}
        diag = f"`{d['pitfalls'][0]['pitfall']}`" if d.get("status") == "named" and d.get("pitfalls") else d.get("status", "-")
    errors = [e for d in case.get("dtypes", []) for e in d.get("errors", []) if not e.get("as_expected")]
    if errors and first == "-":
        e = errors[0]
        first = f"{e['port']} {e.get('phase', '')}: {e.get('exc_type')}: {e.get('message', '')[:80]}"
    status = case["status"]
    return f"| {_ICON.get(status, '')} {_cell(case['case'])} | {status} | {_cell(verdicts)} | {_cell(first)} | {_cell(diag)} |"


def render_markdown_summary(report: Mapping, *, limit: int = 25) -> str:
    """Return the summary as Markdown text."""
    s = report.get("summary", {})
    cases = sorted(report.get("cases", []), key=lambda c: _ORDER.get(c["status"], 9))
    counts = " · ".join(f"{len(s.get(k, []))} {k.replace('_', ' ')}" for k in ("passed", "failed", "crashed", "not_run"))
    lines = [
        f"### parity: exit {report.get('exit_code')} ({report.get('exit_meaning', '')})",
        "",
        f"{len(cases)} cases: {counts}" + (f" · {s['wall_seconds']:.0f} s" if isinstance(s.get("wall_seconds"), (int, float)) else ""),
        "",
        "| case | status | verdicts | first divergence | diagnosis |",
        "|---|---|---|---|---|",
    ]
    lines += [_case_row(c) for c in cases[:limit]]
    if len(cases) > limit:
        lines.append(f"| … {len(cases) - limit} more cases | | | | |")
    pit = report.get("pitfalls") or []
    if pit:
        good = sum(1 for r in pit if r.get("caught") and r.get("named_first") and r.get("right_clean"))
        lines += ["", f"Pitfall catalogue: {good} of {len(pit)} runs caught, named first and right port clean."]
    for note in report.get("notes", [])[:5]:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"
