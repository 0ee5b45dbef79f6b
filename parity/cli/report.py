"""What every command that runs cases shows and writes, in one order (``run``, ``check``, ``diff``).

:class:`Findings` gathers, case by case while the windows still hold their tensors, the settings
check and the diagnosis of each diverging comparison (:meth:`Findings.examine`); :func:`show` prints
the settings warnings, the case table, what did not run, the details and the gradient health;
:func:`write_files` writes the JSON (atomically) and the other report files. The verdict and the
exit code are :mod:`parity.run.result`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Findings", "show", "write_files", "say"]


def say(text: str = "") -> None:
    """One line of the report, on stdout, flushed (the progress and the errors go to stderr)."""
    print(text, flush=True)


@dataclass
class Findings:
    """What the report says of the cases besides their comparisons."""

    diagnoses: dict = field(default_factory=dict)  # (case, comparison index) -> diagnoses, most likely first
    settings: dict = field(default_factory=dict)  # case -> dtype -> settings-check warnings
    warnings: list = field(default_factory=list)  # the same, one line each, as printed

    def examine(self, result, *, named: bool = True, facts: dict | None = None) -> None:
        """Check the settings and diagnose each diverging comparison of ``result`` (its windows still full);
        ``facts`` (``parity diff``: :func:`parity.program.facts.program_facts`) name divergences first."""
        from parity.pitfalls.diagnose import diagnose, settings_check
        from parity.program.facts import compare_facts, differing

        if facts is not None:
            facts = dict(facts, differs=differing(compare_facts(facts["reference"], facts["port"])))

        case = result.case
        for dtype, traces in result.traces.items():
            found = settings_check(case, traces)
            if found:
                self.settings.setdefault(case.name, {})[dtype] = found
            self.warnings += [f"{case.name + ' ' if named else ''}({dtype}): {w}" for w in found]
        for i, c in enumerate(result.comparisons):
            if not c.ok:
                traces = {p: result.traces[c.dtype][p] for p in (c.a.get("port"), c.b.get("port"))}
                self.diagnoses[(case.name, i)] = diagnose(case, c, traces, facts)


def show(results, findings: Findings, args, *, not_run=None, details_title="Divergences, refusals and crashes") -> None:
    """Print the settings check, the case table, what did not run, the details and the gradient health."""
    from parity.report import text as report
    from parity.report.terminal import fit, format_cases, format_health

    quiet = getattr(args, "quiet", False)
    if findings.warnings:
        say("Settings check (before any numbers):")
        for w in findings.warnings:
            say(fit(f"  warning: {w}"))
        say()
    say(format_cases(results, not_run, verbose=getattr(args, "verbose", False), quiet=quiet))
    skipped = report.format_not_run(not_run or {})
    if skipped:
        say("\nNot run (never counted as passing)")
        say(fit(skipped))
    details = report.format_details(results, findings.diagnoses)
    if details:
        say(f"\n{details_title}")
        say(fit(details))
    health = format_health(results)
    if health and not quiet:
        say("\nGradient health (float64)")
        say(health)


def write_files(args, data: dict | None, observer=None) -> None:
    """Write the JSON report (``--json``, atomically) and the other report files of ``data`` (None: none
    was asked for); say where each went, and where ``--tensorboard``'s events are."""
    from parity.cli.outputs import write_reports
    from parity.io import atomic_write
    from parity.report.jsonreport import strict_json

    if data is not None and getattr(args, "json", None):
        with atomic_write(args.json) as fh:
            fh.write(strict_json(data))
        say(f"JSON report: {args.json}")
    if data is not None:
        write_reports(args, data, say)
    if observer is not None:
        say(f"TensorBoard events: {args.tensorboard} (tensorboard --logdir {args.tensorboard})")
