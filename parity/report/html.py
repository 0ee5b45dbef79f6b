"""One self-contained HTML page from the JSON report (``--html FILE``).

The page is rendered from the same dict the ``--json`` file holds
(:func:`parity.report.jsonreport.report_dict`, docs/report-schema.json), so whatever produced the
report (``run``, ``check``, ``compare``, ``diff``) gets the same page: the verdict table; per
case the loss of every port on one plot, the per-layer gradient norm and update/weight ratio
with the ports overlaid (seed 000's vanishing first layer, seed 001's unmoving filters); per
comparison a stage x step map of the error in units of its bound, the first divergence with
the two tensors' worst elements, the diagnosis with its fix, and the settings check; for ``diff``
the two programs' facts side by side and what the comparison does not cover. Plots are
inline SVG (matplotlib): the page loads nothing from anywhere.
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

from parity.trace.memory import STAGES, stage_label

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin-bottom:6px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f4f4f4}.passed{color:#11772b;font-weight:600}.failed,.crashed{color:#b3261e;font-weight:600}
.not_run{color:#777}.semantic,.structure{color:#b3261e}.muted{color:#666}code{font-size:12px}
.plot svg{max-width:100%;height:auto}.box{border-left:4px solid #b3261e;background:#fdf3f2;padding:6px 12px;margin:8px 0}
.ok{border-left-color:#11772b;background:#f1f8f3}.warn{border-left-color:#c98a00;background:#fdf8ec}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _num(x: Any, fmt: str = ".3g") -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    try:
        return format(float(x), fmt)
    except (TypeError, ValueError):
        return _e(x)


def _fix(pitfall: str) -> str | None:
    try:
        from parity.pitfalls import get_pitfall

        return get_pitfall(pitfall).fix
    except Exception:  # noqa: BLE001 -- a name the registry does not hold (another version's report)
        return None


def _plot(fn, *args, **kwargs) -> str:
    from parity.report.plots import available

    why = available()
    if why:
        return f'<p class="muted">{_e(why)}</p>'
    return f'<div class="plot">{fn(*args, **kwargs)}</div>'


def _verdict_cell(c: Mapping) -> str:
    verdict = c.get("verdict", "?")
    margin = c.get("margin_of_bound")
    extra = f" ({_num(margin, '.2g')} of bound)" if verdict == "rounding" and c.get("dtype") == "float32" else ""
    expect = " <span class='muted'>(must diverge)</span>" if c.get("expect") == "diverge" else ""
    return f"<span class='{_e(verdict)}'>{_e(verdict)}</span>{_e(extra)}{expect}"


def _first(c: Mapping) -> str:
    f = c.get("first_divergence")
    if not f:
        return "-"
    return f"step {_e(f['step'])}, {_e(stage_label(f['stage']))}, <code>{_e(f['tensor'])}</code>"


def _summary_table(cases: Sequence[Mapping]) -> str:
    rows = []
    for case in cases:
        comps = [c for d in case.get("dtypes", []) for c in d.get("comparisons", [])]
        first_bad = next((c for c in comps if not c.get("behaved", c.get("ok"))), None)
        shown = first_bad or next((c for c in comps if c.get("first_divergence")), None)
        verdicts = sorted({f"{c['dtype']}: {c['verdict']}" for c in comps})
        rows.append(
            f"<tr><td><a href='#case-{_e(case['case'])}'>{_e(case['case'])}</a></td>"
            f"<td class='{_e(case['status'])}'>{_e(case['status'])}</td>"
            f"<td>{_e(', '.join(verdicts)) or '-'}</td>"
            f"<td>{_e(shown['pair'] + ' ' + shown['dtype']) + ': ' + _first(shown) if shown else '-'}</td></tr>"
        )
    return (
        "<table><tr><th>case</th><th>status</th><th>verdicts (pairs grouped)</th><th>first divergence</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _worst_table(c: Mapping) -> str:
    rows = []
    for d in c.get("worst_by_stage", []):
        rows.append(
            f"<tr><td>{_e(stage_label(d['stage']))}</td><td><code>{_e(d['tensor'])}</code></td><td>{_e(d['step'])}</td>"
            f"<td>{_num(d['max_abs'])}</td><td>{_num(d['max_rel'])}</td><td>{_num(d['units_of_bound'], '.2g')}</td>"
            f"<td>{_num(d.get('model_bound', d.get('bound')))}</td><td>{_num(d.get('envelope'))}</td>"
            f"<td class='{_e(d['verdict'])}'>{_e(d['verdict'])}</td></tr>"
        )
    return (
        "<table><tr><th>stage</th><th>worst tensor</th><th>step</th><th>max abs</th><th>max rel</th>"
        "<th>units of bound</th><th>written bound</th><th>measured envelope</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _divergence_box(c: Mapping) -> str:
    f = c.get("first_divergence")
    if not f:
        return "<div class='box ok'>No divergence: every stage of every step is within rounding.</div>"
    idx = ",".join(str(i) for i in (f.get("index") or []))
    values = ""
    if f.get("a_value") is not None:
        values = (
            f"<br>worst element <code>{_e(f['tensor'])}[{_e(idx)}]</code>: {_e(c['a'])} = {_num(f['a_value'], '.9g')}, "
            f"{_e(c['b'])} = {_num(f['b_value'], '.9g')} (abs {_num(f.get('max_abs'))}, rel {_num(f.get('max_rel'))}, "
            f"{_num(f.get('units_of_bound'), '.3g')} x the bound)"
        )
    diag = c.get("diagnosis") or {}
    lines = [f"<b>First divergence</b> ({_e(f.get('kind'))}): {_first(c)}{values}"]
    if diag.get("status") == "named":
        for i, p in enumerate(diag.get("pitfalls", [])):
            fix = _fix(p["pitfall"])
            head = "likely" if i == 0 else "also possible"
            lines.append(
                f"<b>{head}: <code>{_e(p['pitfall'])}</code></b> (score {_num(p.get('score'), '.2g')}): {_e(p.get('evidence'))}"
                + (f"<br><i>fix:</i> {_e(fix)}" if fix else "")
            )
    else:
        lines.append(f"<b>Diagnosis:</b> {_e(diag.get('summary', 'unknown'))}")
    downstream = c.get("downstream") or []
    if downstream:
        lines.append(
            f"<span class='muted'>downstream ({c.get('divergences', len(downstream) + 1) - 1} more): "
            + "; ".join(f"step {d['step']} {stage_label(d['stage'])} {d['tensor']}" for d in downstream[:6])
            + "</span>"
        )
    return "<div class='box'>" + "<br>".join(lines) + "</div>"


def _comparison(c: Mapping) -> str:
    """A diverging comparison shown open; an agreeing one folded to its title line."""
    title = f"{_e(c['pair'])} · {_e(c['dtype'])} · {_verdict_cell(c)}"
    body = _comparison_body(c)
    if c.get("first_divergence") or not c.get("behaved", c.get("ok")):
        return f"<h3>{title}</h3>{body}"
    return f"<details><summary><b>{title}</b></summary>{body}</details>"


def _comparison_body(c: Mapping) -> str:
    parts = [_divergence_box(c)]
    heat = c.get("heatmap")
    if heat and heat.get("units"):
        parts.append(_plot(_heatmap, heat, f"{c['pair']} ({c['dtype']}): error in units of the bound"))
    skipped = c.get("stages_skipped") or []
    if skipped:
        parts.append(
            "<p class='muted'>not compared: "
            + _e(", ".join(f"{stage_label(s['stage'])} (only {s['only_in']} reports it)" for s in skipped))
            + "</p>"
        )
    parts.append("<details><summary>worst tensor per stage</summary>" + _worst_table(c) + "</details>")
    return "\n".join(parts)


def _heatmap(heat: Mapping, title: str) -> str:
    from parity.report.plots import heatmap_svg
    from parity.report.text import STAGE_ABBREV

    stages = [s for s in STAGES if s in heat["stages"]]
    rows = [heat["units"][heat["stages"].index(s)] for s in stages]
    return heatmap_svg(stages, rows, title, {s: stage_label(s) for s in STAGE_ABBREV})


def _series_plots(case: str, d: Mapping) -> str:
    from parity.report.plots import lines_svg

    series = d.get("series") or {}
    if not series:
        return ""
    parts = []
    loss = {port: {port: s.get("loss", [])} for port, s in series.items() if s.get("loss")}
    if loss:
        parts.append(_plot(lines_svg, loss, f"{case} ({d['dtype']}): loss, every port", "loss"))
    for key, label in (("grad_norm", "gradient norm"), ("update_ratio", "update / weight ratio")):
        per = {
            port: {name: v.get(key, []) for name, v in (s.get("layers") or {}).items()}
            for port, s in series.items()
            if s.get("layers")
        }
        if any(per.values()):
            parts.append(
                _plot(lines_svg, per, f"{case} ({d['dtype']}): {label} per layer (style = port)", label)
            )
    return "\n".join(parts)


def _case(case: Mapping) -> str:
    head = f"<h2 id='case-{_e(case['case'])}'>{_e(case['case'])} · <span class='{_e(case['status'])}'>{_e(case['status'])}</span></h2>"
    parts = [head]
    if case.get("title"):
        parts.append(f"<p>{_e(case['title'])}</p>")
    for p in case.get("ports_not_run", []):
        parts.append(f"<p class='muted'>not run: {_e(p['port'])} ({_e(p['reason'])})</p>")
    for d in case.get("dtypes", []):
        for w in d.get("settings_check", []):
            parts.append(f"<div class='box warn'><b>settings ({_e(d['dtype'])}):</b> {_e(w)}</div>")
        for err in d.get("errors", []):
            where = err.get("where") or {}
            loc = f" at {where.get('file')}:{where.get('line')}" if where else ""
            cls = "ok" if err.get("as_expected") else ""
            parts.append(
                f"<div class='box {cls}'><b>{_e(err['port'])} ({_e(err['dtype'])}) {_e(err.get('phase'))}:</b> "
                f"{_e(err.get('exc_type'))}: {_e(err.get('message'))}{_e(loc)}"
                + (" (the expected refusal)" if err.get("as_expected") else "")
                + "</div>"
            )
        plots = _series_plots(case["case"], d)
        if plots:
            parts.append(f"<h3>{_e(d['dtype'])}: training curves</h3>" + plots)
        for c in d.get("comparisons", []):
            parts.append(_comparison(c))
    return "\n".join(parts)


def _pitfall_table(rows: Sequence[Mapping]) -> str:
    ok = sum(1 for r in rows if r.get("caught") and r.get("named_first") and r.get("right_clean"))
    cells = "".join(
        f"<tr><td><code>{_e(r.get('pitfall'))}</code></td><td>{_e(r.get('dtype'))}</td>"
        f"<td class='{'passed' if r.get('caught') else 'failed'}'>{'yes' if r.get('caught') else 'NO'}</td>"
        f"<td class='{'passed' if r.get('named_first') else 'failed'}'>{'yes' if r.get('named_first') else 'no'}"
        f" <span class='muted'>{_e(', '.join(r.get('named') or []))}</span></td>"
        f"<td>{_e(r.get('first_divergence'))}</td><td>{_num(r.get('magnitude'))}</td>"
        f"<td class='{'passed' if r.get('right_clean') else 'failed'}'>{'yes' if r.get('right_clean') else 'NO'}</td></tr>"
        for r in rows
    )
    return (
        f"<h2 id='pitfalls'>Pitfall catalogue: {ok} of {len(rows)} runs caught, named first, right port clean</h2>"
        "<table><tr><th>pitfall</th><th>dtype</th><th>wrong port caught</th><th>named first</th>"
        "<th>first divergence</th><th>max abs</th><th>right port clean</th></tr>" + cells + "</table>"
    )


def _value(v: Any) -> str:
    if isinstance(v, list):
        return "<br>".join(_e(x) for x in v) or "none"
    return "-" if v is None else _e(v)


def _facts(facts: Mapping) -> str:
    """``diff``: both programs' facts side by side (before any number) and what the comparison does not cover."""
    rows = "".join(
        f"<tr class='{'failed' if r.get('status') == 'differs' else ''}'><td><code>{_e(r.get('fact'))}</code></td>"
        f"<td>{_value(r.get('reference'))}</td><td>{_value(r.get('port'))}</td><td>{_e(r.get('status'))}</td></tr>"
        for r in facts.get("rows", [])
    )
    return (
        "<h2 id='facts'>Program facts (read from each program's own objects, before any number)</h2>"
        "<table><tr><th>fact</th><th>reference</th><th>port</th><th></th></tr>" + rows + "</table>"
    )


def _not_covered(facts: Mapping) -> str:
    items = "".join(f"<li>{_e(x)}</li>" for x in facts.get("not_covered", []))
    return ("<h2 id='not-covered'>What this comparison does not cover</h2><div class='box warn'>"
            "Read this before taking \"agree\" for \"trains the same\".<ul>" + items + "</ul></div>")


def render_html(report: Mapping) -> str:
    """Return the page for one JSON report dict (``report_dict(...)``)."""
    summary = report.get("summary", {})
    cases = report.get("cases", [])
    counts = ", ".join(f"{len(summary.get(k, []))} {k.replace('_', ' ')}" for k in ("passed", "failed", "crashed", "not_run"))
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.get("notes", []))
    body = [
        f"<h1>parity report</h1><p class='muted'>parity {_e(report.get('parity_version'))} · "
        f"{_e(report.get('created'))} · <code>parity {_e(' '.join(report.get('command', [])))}</code></p>",
        f"<p><b>exit {_e(report.get('exit_code'))}</b>: {_e(report.get('exit_meaning'))} · {len(cases)} cases: {_e(counts)}</p>",
        f"<ul>{notes}</ul>" if notes else "",
        _summary_table(cases),
        "<p class='muted'>Reading it: each comparison's map shows every stage (rows) at every step (columns); "
        "colour is the error in units of its rounding bound, red beyond it. The first red cell is where the "
        "two runs first compute different things; everything after it is downstream.</p>",
    ]
    facts = report.get("facts")
    if facts:
        body.append(_facts(facts))
    body += [_case(c) for c in cases]
    if facts:
        body.append(_not_covered(facts))
    pitfalls = report.get("pitfalls")
    if pitfalls:
        body.append(_pitfall_table(pitfalls))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>parity report</title>"
        f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )
