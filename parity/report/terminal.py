"""The terminal's view of a run: fits the terminal (``COLUMNS`` respected), one row per case, progress.

A file (stdout not a terminal) gets every row whole: ``COLUMNS`` and the terminal's width apply only
to a terminal; long text is wrapped (never cut) at a fixed readable width there.

* :func:`width` — the wrapping width (a terminal: ``COLUMNS`` first, then its width; a file: 100).
* :func:`row_width` — the width rows are cut to: the terminal's; None (whole) in a file.
* :func:`format_cases` — one row per case: status, the pairs grouped by verdict per dtype
  ("f64 6 rounding ≤2e-15 · f32 6 rounding ≤0.09×bound"), and where
  it first diverges; ``verbose`` adds one indented line per pair; on a terminal lines never exceed its width.
* :func:`format_health` — seed 000's gradient health as one row per (variable, port).
* :func:`fit` — wrap any text block to the width (at spaces: a name is never cut).
* :class:`Progress` — count, elapsed and ETA on stderr (rich), silent when stderr is not a terminal.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from typing import Mapping, Sequence

__all__ = ["width", "row_width", "is_terminal", "fit", "clip", "format_cases", "format_health", "Progress"]


def is_terminal() -> bool:
    """Whether stdout (where the report goes) is a terminal."""
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def width(default: int = 100) -> int:
    """The wrapping width: on a terminal ``COLUMNS`` when set, else the terminal's (at least 60); in a
    file ``default`` (``COLUMNS`` is the terminal's, not the file's)."""
    if not is_terminal():
        return default
    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(60, int(env))
    return max(60, shutil.get_terminal_size((default, 24)).columns)


def row_width() -> int | None:
    """The width a row is cut to: the terminal's; None in a file (every row is written whole)."""
    return width() if is_terminal() else None


def fit(text: str, cols: int | None = None, indent: str = "    ") -> str:
    """Wrap every line of ``text`` to ``cols`` (continuations indented under their line); wrapping is at
    spaces, never inside a word: nothing is cut, a word longer than the line keeps a line of its own."""
    cols = cols or width()
    out = []
    for line in text.splitlines():
        if len(line) <= cols:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(line, cols, initial_indent="", subsequent_indent=lead + indent,
                             break_long_words=False, break_on_hyphens=False, drop_whitespace=True) or [line]
    return "\n".join(out)


def clip(text: str, cols: int | None) -> str:
    """Cut one line to ``cols`` characters (an ellipsis marks the cut); ``cols`` None: the line whole."""
    return text if cols is None or len(text) <= cols else text[: max(cols - 1, 0)] + "…"


_clip = clip


def _group(result) -> list[str]:
    """Per dtype: the agreeing pairs counted with their worst error, the others by verdict.

    "f64 6 rounding ≤5e-16", "f32 5 rounding ≤0.09×bound, 1 SEMANTIC" (the counts are
    pairs; a single pair is named: "f64 tf1 vs torch exact"); a must-diverge
    case says "caught: SEMANTIC" (or "MISSED: rounding" when nothing diverged).
    """
    per: dict[str, list] = {}
    for c in result.comparisons:
        per.setdefault(c.dtype, []).append(c)
    parts = []
    for dtype, comps in per.items():
        agree = [c for c in comps if c.ok]
        bits = []
        if result.case.expect == "diverge":
            bad = sorted({_VERDICT_SHOWN.get(c.verdict, c.verdict.upper()) for c in comps if not c.ok})
            if bad:
                bits.append("caught: " + "/".join(bad))
            else:
                bits.append("MISSED: " + ("rounding" if any(c.verdict == "rounding" for c in comps) else "exact"))
        elif agree:
            if dtype == "float32":
                worst = max((max((d.units for d in c.diffs), default=0.0) for c in agree), default=0.0)
                bits.append(f"{_count(agree, comps)}rounding ≤{worst:.2g}×bound" if worst else f"{_count(agree, comps)}exact")
            else:
                worst = max((c.worst_rel() for c in agree), default=0.0)
                bits.append(f"{_count(agree, comps)}" + (f"rounding ≤{worst:.0e}" if worst else "exact"))
        if result.case.expect != "diverge":
            for verdict in ("semantic", "structure", "nonfinite"):
                n = sum(1 for c in comps if c.verdict == verdict)
                if n:
                    bits.append(f"{n} {_VERDICT_SHOWN.get(verdict, verdict.upper())}")
        who = f" {comps[0].pair}" if len(comps) == 1 else ""  # a single pair is named
        parts.append(f"{_SHORT.get(dtype, dtype)}{who} " + ", ".join(bits))
    return parts


_SHORT = {"float64": "f64", "float32": "f32"}
#: how a failing verdict shows in the case table ("nonfinite": both runs NaN or inf at the same place)
_VERDICT_SHOWN = {"nonfinite": "NON-FINITE (both NaN/inf)"}


def _count(some: list, of: list) -> str:
    return "" if len(of) == 1 else f"{len(some)} "


def _refusals(result) -> str:
    """A must-refuse case: 'refused (expected)', 'WRONG REFUSAL' or 'NOT REFUSED', with the ports."""
    from parity.run.result import error_expected

    right, wrong = [], []
    for dtype, errs in result.errors.items():
        for port, err in errs.items():
            (right if error_expected(result, port, err) else wrong).append((port, err))
    trained = sorted({p for traces in result.traces.values() for p in (traces or {})})
    bits = []
    if wrong:
        port, err = wrong[0]
        bits.append(f"WRONG REFUSAL {port}: {getattr(err, 'exc_type', '?')}: {getattr(err, 'exc_message', err)}")
    if trained:
        bits.append(f"NOT REFUSED: {', '.join(trained)} trained")
    if right:
        bits.append(f"refused (expected): {', '.join(sorted({p for p, _ in right}))}")
    return "; ".join(bits)


def _first(result) -> str:
    bad = [c for c in result.comparisons if c.first_divergence is not None]
    if not bad:
        return ""
    c = min(bad, key=lambda c: (c.first_divergence.step, c.dtype != "float64"))
    f = c.first_divergence
    from parity.trace.memory import stage_label

    return f"{c.pair} {c.dtype}: step {f.step}, {stage_label(f.stage)}, {f.name}"


def format_cases(results: Sequence, not_run: Mapping[str, Mapping[str, str]] | None = None, *,
                 cols: int | None = None, verbose: bool = False, quiet: bool = False) -> str:
    """One row per case (``quiet``: only the cases that did not pass); ``verbose`` adds each pair."""
    from parity.run.result import case_status

    cols = cols or row_width()  # None (a file): every row whole
    name_w = max([len(r.case.name) for r in results] + [4])
    if cols is not None:
        name_w = min(name_w, 40)
    lines = [f"{'case':{name_w}s}  {'status':8s}  verdicts (pairs grouped) / first divergence", "-" * min(cols or 100, 100)]
    for r in results:
        status = case_status(r)
        if quiet and status in ("passed", "not_run"):
            continue
        shown = {"passed": "ok", "failed": "FAILED", "crashed": "CRASHED", "not_run": "not run"}.get(status, status)
        if r.case.expect == "diverge" and status == "passed":
            shown = "caught"
        groups = _refusals(r) if r.case.expect == "error" else " · ".join(_group(r))
        errors = [(d, p, e) for d, errs in r.errors.items() for p, e in errs.items()]
        crash = ""
        if errors and r.case.expect != "error":
            d, p, e = errors[0]
            crash = f"CRASH {p} {d}: {getattr(e, 'exc_type', type(e).__name__)}: {getattr(e, 'exc_message', str(e))}"
            if len(errors) > 1:
                crash += f" (and {len(errors) - 1} more)"
            if not groups:
                groups, crash = crash, ""
        skipped = (not_run or {}).get(r.case.name) or {}
        if not groups and skipped:
            groups = "not run: " + "; ".join(sorted(set(skipped.values())))
        head = f"{_clip(r.case.name, name_w):{name_w}s}  {shown:8s}  "
        lines.append(head + _clip(groups, _less(cols, len(head))))
        first = _first(r)
        pad = "    "  # details under the case name: the first divergence fits a line
        if crash:
            lines.append(pad + _clip(crash, _less(cols, len(pad))))
        if first:
            lines.append(pad + _clip("first: " + first, _less(cols, len(pad))))
        if verbose:
            from parity.report.text import _verdict, _worst

            for c in r.comparisons:
                lines.append(pad + _clip(f"{c.pair} {c.dtype}: {_verdict(c)}; {_worst(c)}", _less(cols, len(pad))))
    return "\n".join(lines)


def _less(cols: int | None, n: int) -> int | None:
    return None if cols is None else cols - n


def format_health(results: Sequence, dtype: str = "float64", cols: int | None = None) -> str:
    """Gradient health of the seed-000 / health cases: one row per (variable, port), means over the run.

    Then seed 000's finding (the first layer's gradient variance, 2 vs 3 layers) as measured.
    """
    from parity.trace.health import layer_health, ratio

    cols = cols or row_width()
    lines: list[str] = []
    first_var: dict[str, dict[str, float]] = {}
    for r in results:
        if not ({"seed000", "health"} & set(r.case.tags)):
            continue
        traces = r.traces.get(dtype, {})
        shown = [p for p in traces if ":" not in p and p != "numpy"]
        if not shown:
            continue
        lines.append(_clip(f"{r.case.name} ({r.case.title}; {dtype}, mean over {r.case.steps} steps)", cols))
        lines.append(f"  {'variable':16s} {'port':8s} {'|g|':>10s} {'var(g)':>10s} {'|dw|/|w|':>10s}")
        per = {p: {h.name: h for h in layer_health(traces[p])} for p in shown}
        for name in per[shown[0]]:
            for p in shown:
                h = per[p].get(name)
                if h is not None:
                    lines.append(_clip(f"  {name:16s} {p:8s} {h.mean('grad_norm'):10.3e} {h.mean('grad_var'):10.3e} "
                                       f"{h.mean('update_ratio'):10.3e}", cols))
        for p in shown:
            names = list(per[p])
            if names:
                first_var.setdefault(r.case.name, {})[p] = per[p][names[0]].mean("grad_var")
    two, three = first_var.get("seed000_encoder2_tiny"), first_var.get("seed000_encoder3_tiny")
    if two and three:
        lines += ["", "Seed 000's finding, measured here (first-layer W gradient variance, mean over the run):"]
        for p in two:
            if p in three:
                line = (f"  {p}: 1-16-1 tiny init {two[p]:.3g}; 1-16-16-1 tiny init {three[p]:.3g} "
                        f"({ratio(two[p], three[p]):.3g}x smaller)")
                xav = first_var.get("seed000_encoder3_xavier", {}).get(p)
                if xav is not None:
                    line += f"; 1-16-16-1 Xavier + bias 0.1 {xav:.3g} ({ratio(xav, three[p]):.3g}x the tiny-init value)"
                lines.append(fit(line, cols or width()))
    return "\n".join(lines)


class Progress:
    """Progress of a run on stderr: done/total, elapsed, ETA, the item at work (rich; silent off a terminal).

    Use as a context manager; :meth:`advance` after each item, :meth:`label` to say what runs.
    """

    def __init__(self, total: int, what: str = "cases", *, enabled: bool | None = None):
        self.total, self.what = total, what
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress = None
        self._task = None
        self.started = time.perf_counter()

    def __enter__(self) -> "Progress":
        if self.enabled and self.total > 0:
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn
                from rich.progress import TimeElapsedColumn, TimeRemainingColumn
            except ImportError:  # rich is a dependency; without it, no bar (never an error)
                self.enabled = False
                return self
            self._progress = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("elapsed"),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[item]}"),
                console=Console(file=sys.stderr), transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(self.what, total=self.total, item="")
        return self

    def label(self, item: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, item=item)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def restart(self) -> None:
        """Back to none done (the run starts over), the total as it was."""
        if self._progress is not None:
            self._progress.reset(self._task, total=self.total, item="")

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None
