"""The program facts as text: the side-by-side table printed before any number, and the block
"What this comparison does not cover" printed after the verdict (``parity diff``). The records are
:mod:`parity.program.facts`'s (as JSON: ``{"fact", "reference", "port", "status"}``)."""

from __future__ import annotations

import re

__all__ = ["format_facts", "format_not_covered", "facts_json"]

_MARK = {"same": " ", "differs": "!", "one side": "?", "info": " "}


#: facts listed item by item with where each was read ("... at file.py:12"): the table says what, the
#: "does not cover" block where
_LISTED = ("seeds", "augmentation", "input.scaling", "lr.schedule.epochs")


def _what(item) -> str:
    return re.sub(r"( in \S+\(\))? at \S+:\d+.*$", "", str(item))


def _text(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "; ".join(_text(x) for x in v) if v else "none"
    return str(v)


def format_facts(rows, reference: str = "reference", port: str = "port", width: int = 40) -> str:
    """The table: one fact a line, ``!`` where the two differ, ``?`` where one side does not say."""
    rows = [r if isinstance(r, dict) else r.to_json() for r in rows]
    if not rows:
        return "  (neither program gives facts)"
    kw = max(len(r["fact"]) for r in rows)
    head = f"    {'fact'.ljust(kw)}  {reference[:width].ljust(width)}  {port[:width]}"
    lines = [head]
    for r in rows:
        a, b = (_text([_what(x) for x in v] if r["fact"] in _LISTED and isinstance(v, list) else v)
                for v in (r["reference"], r["port"]))
        lines.append(f"  {_MARK.get(r['status'], ' ')} {r['fact'].ljust(kw)}  {a.ljust(width)}  {b}")
    n = sum(r["status"] == "differs" for r in rows)
    lines.append(f"  {n} fact{'s' if n != 1 else ''} differ{'' if n != 1 else 's'} (!); ? = one side does not say")
    return "\n".join(lines)


def format_not_covered(lines) -> str:
    return "\n".join(f"  - {line}" for line in lines)


def facts_json(facts: dict, rows, covered) -> dict:
    """The ``facts`` block of the JSON report (docs/report-schema.json)."""
    return {
        "rows": [r if isinstance(r, dict) else r.to_json() for r in rows],
        "init": list(facts.get("init", [])),
        "data": facts.get("data", {}),
        "not_covered": list(covered),
    }
