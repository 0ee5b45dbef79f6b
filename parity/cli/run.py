"""The run/check pipeline of the command line: plan the ports, check the outputs, run, report.

:func:`run_and_report` checks every output path before any port runs, leaves out the ports
of frameworks not installed or not selected (one note each, listed as "not run"), prints the
table and the details, writes the JSON atomically and returns the exit code.
"""

from __future__ import annotations

import contextlib
import sys
import time

from parity.cases.case import DTYPES, FRAMEWORKS, PortSpec
from parity.errors import EXIT_DIVERGED

__all__ = ["run_and_report", "plan_ports", "selected_frameworks"]


def _say(text: str = "") -> None:
    print(text, flush=True)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def selected_frameworks(args) -> tuple[str, ...] | None:
    from parity.run.frameworks import parse_frameworks

    return parse_frameworks(getattr(args, "frameworks", None))


def plan_ports(case, chosen, *, replaced=()) -> tuple[list[str], dict[str, str]]:
    """Split a case's ports into those that run and those that do not (port -> why not)."""
    from parity.run.frameworks import missing_reason

    run, skipped = [], {}
    for port in case.ports:
        fw = PortSpec.parse(port).framework
        if fw in replaced:
            continue
        if chosen is not None and fw not in chosen:
            skipped[port] = "left out by --frameworks"
            continue
        reason = missing_reason(fw)
        if reason:
            skipped[port] = reason
            continue
        run.append(port)
    return run, skipped


def _missing_note(not_run: dict) -> list[str]:
    """One note per missing framework (with its install command), however many ports it skipped."""
    from parity.run.frameworks import missing_reason

    seen, notes = set(), []
    for ports in not_run.values():
        for port, reason in ports.items():
            fw = PortSpec.parse(port).framework
            if reason != "left out by --frameworks" and missing_reason(fw) and reason not in seen:
                seen.add(reason)
                kind = {"tf1": "tf1 and tf2", "tf2": "tf1 and tf2"}.get(fw, fw)
                notes.append(f"note: {reason}: the {kind} ports are not run (listed as 'not run', never as passing)")
    return notes


def _check_outputs(args) -> None:
    """Check every output path before any port runs (none the same as another; directories created)."""
    from parity.cli.outputs import check_outputs

    # --json and --traces too; `check`'s port files are inputs no output may overwrite
    check_outputs(args, inputs={f"--{fw}-port": getattr(args, f"{fw}_port", None) for fw in ("torch", "tf1", "tf2")})


def run_and_report(cases, args, *, kind="run", modules=None, sources=None, plan=None, catalogue=False,
                   notes=(), workers: bool = False) -> int:
    """Run ``cases`` (``plan``: which ports of a case run), print the report, write the files; return the exit code.

    ``workers``: each framework's ports in a worker process of its own (``parity run`` / ``check``:
    ``PARITY_WORKERS``' setting)."""
    from parity.cli.outputs import tensorboard_observer, wants_report_dict
    from parity.cli.report import Findings, show, write_files
    from parity.report.jsonreport import report_dict
    from parity.run.result import exit_code

    _check_outputs(args)
    chosen = selected_frameworks(args)
    started = time.perf_counter()
    planned, not_run = [], {}
    for case in cases:
        ports, skipped = plan(case) if plan else plan_ports(case, chosen)
        planned.append((case, ports))
        if skipped:
            not_run[case.name] = skipped
    notes = list(notes) + _missing_note(not_run)
    for note in notes:
        _progress(note)
    observer = tensorboard_observer(args)
    findings = Findings()
    pit_names = _catalogue_names(chosen) if catalogue else None
    units = [(c, p) for c, p in planned if p]
    n = 1
    if workers and modules is None and observer is None and kind == "run":
        from parity.cli.jobs import jobs_for

        n = jobs_for(len(units) + len(pit_names or ()), getattr(args, "jobs", None))
    used = {PortSpec.parse(p).framework for _, ports in planned for p in ports}
    if workers and used & {"tf1", "tf2"}:
        from parity.run import zygote

        # TensorFlow imported once for every TF worker; torch too (by a zygote of its own, beside TensorFlow's import)
        # only where several jobs each start a torch worker (one harness's one torch worker saves nothing)
        zygote.start(used if n > 1 else used - {"torch"})
    with contextlib.ExitStack() as stack:
        pitfall_replies = None
        if n > 1:
            from parity.cli.jobs import Jobs

            jobs = stack.enter_context(Jobs(n))
            results, pitfall_replies = _run_cases_in_jobs(jobs, planned, args, findings, pit_names or [])
        else:
            results = _run_cases(planned, args, findings, modules=modules, sources=sources, observer=observer,
                                 workers=workers)
        show(results, findings, args, not_run=not_run)
        statuses = {r.case.name: r.status for r in results}
        code = exit_code(statuses.values())
        extra: dict = {}
        pit_failed = (_run_catalogue(args, chosen, notes, extra, workers, replies=pitfall_replies)
                      if catalogue else [])
    if pit_failed:
        code = max(code, EXIT_DIVERGED)
    wall = time.perf_counter() - started
    extra["wall_seconds"] = round(wall, 2)
    _summary_line(results, statuses, pit_failed, wall)
    data = None
    if getattr(args, "json", None) or wants_report_dict(args):
        data = report_dict(
            results, findings.diagnoses, extra, kind=kind, not_run=not_run, settings=findings.settings, notes=notes,
            user_ports=sources or {}, code=code, command=getattr(args, "argv", None),
            frameworks={"selected": list(chosen) if chosen else None, "not_installed": _not_installed()},
        )
    write_files(args, data, observer)
    return code


def _run_cases(planned, args, findings, *, modules, sources, observer, workers) -> list:
    """Run each case with a progress bar, examining it while its windows hold their tensors, then drop them:
    memory stays that of one case however many run (the traces were written step by step by run_case)."""
    from parity.report.terminal import Progress
    from parity.run.result import CaseResult
    from parity.run.runner import run_case

    from parity.run import isolate

    results = []
    verbose = getattr(args, "verbose", False)
    # the interpreter isolated ports are forked from (parity.run.isolate) is let go after the last case that has any
    last_isolated = max((i for i, (case, ports) in enumerate(planned) if set(ports) & set(case.option("isolate", ()))),
                        default=-1)
    with Progress(len(planned), "cases") as bar:
        for i, (case, ports) in enumerate(planned):
            t0 = time.perf_counter()
            bar.label(case.name)
            if ports:
                with contextlib.redirect_stdout(sys.stderr):  # a port's own prints never go into the report
                    result = run_case(case, dtypes=args.dtype, ports=ports, modules=modules, sources=sources,
                                      trace_dir=getattr(args, "traces", None), summary=getattr(args, "summary", False),
                                      observers=[observer] if observer else (), workers=workers)
            else:
                result = CaseResult(case=case)
            results.append(result)
            if i == last_isolated:
                isolate.shutdown()
            bar.advance()
            if verbose and not bar.enabled:  # the per-case line a log keeps (a terminal has the bar)
                _progress(f"  {case.name:40s} {result.status:7s} {time.perf_counter() - t0:6.1f}s")
            findings.examine(result)
            result.release()
    return results


def _run_cases_in_jobs(jobs, planned, args, findings, pit_names: list[str]):
    """:func:`_run_cases` in job processes (:mod:`parity.cli.jobs`), the catalogue's pitfalls queued after the
    cases. Returns the results in the cases' order once every case is in, and an iterator of the pitfalls'
    replies in the catalogue's order (the jobs go on with them meanwhile)."""
    from parity.cli.jobs import case_units
    from parity.report.terminal import Progress
    from parity.run.result import CaseResult

    options = {"dtypes": args.dtype, "trace_dir": getattr(args, "traces", None),
               "summary": getattr(args, "summary", False)}
    sent = [i for i, (case, ports) in enumerate(planned) if ports]
    units = case_units(planned, options)
    units += [("job_pitfall", name, tuple(args.dtype or DTYPES)) for name in pit_names]
    # the units without TensorFlow first: they start while the zygote still imports it (torch's is ready sooner:
    # parity.run.zygote); each reply is filed under its unit's own index, so the report's order is the same
    order = sorted(range(len(units)), key=lambda i: (_needs_tensorflow(units[i]), i))
    replies = ((order[j], payload) for j, payload in jobs.map([units[i] for i in order]))
    got: dict[int, object] = {}
    verbose = getattr(args, "verbose", False)
    with Progress(len(planned), "cases") as bar:
        bar.label(f"in {jobs.n} jobs")
        while any(k not in got for k in range(len(sent))):
            k, payload = next(replies)
            got[k] = payload
            if k < len(sent):
                bar.advance()
                if verbose and not bar.enabled:
                    case = planned[sent[k]][0]
                    _progress(f"  {case.name:40s} {payload[0].status:7s} {payload[2]:6.1f}s")
        for _ in range(len(planned) - len(sent)):
            bar.advance()
    results, by_index = [], dict(zip(sent, range(len(sent))))
    for i, (case, ports) in enumerate(planned):
        if i not in by_index:
            results.append(CaseResult(case=case))
            continue
        result, found, _ = got.pop(by_index[i])
        result.case = case  # the registry's own object (the job's copy came through a pickle)
        findings.diagnoses.update(found.diagnoses)
        findings.settings.update(found.settings)
        findings.warnings += found.warnings
        results.append(result)

    def pitfalls():
        for k in range(len(sent), len(units)):
            while k not in got:
                j, payload = next(replies)
                got[j] = payload
            yield got.pop(k)

    return results, pitfalls()


def _needs_tensorflow(unit: tuple) -> bool:
    """Whether a job's unit runs a TensorFlow port (a catalogue pitfall counts as one: their references are TensorFlow's)."""
    return unit[0] != "job_case" or any(PortSpec.parse(p).framework in ("tf1", "tf2") for p in unit[2])


def _catalogue_missing(chosen) -> list[str]:
    return [fw for fw in ("tf1", "tf2", "torch") if (chosen is not None and fw not in chosen) or _plan_missing(fw)]


def _catalogue_names(chosen) -> list[str]:
    """The pitfalls ``parity run --all`` runs ([] when a framework they need is missing): the data-parallel
    pitfalls (heavy tags) run only by name."""
    if _catalogue_missing(chosen):
        return []
    from parity.cases.case import HEAVY_TAGS
    from parity.cases.registry import get_case
    from parity.tools import pitfall_check as pitfalls

    return [p.name for p in pitfalls.all_pitfalls() if not set(HEAVY_TAGS) & set(get_case(p.wrong_case).tags)]


def _run_catalogue(args, chosen, notes: list, extra: dict, workers: bool, *, replies=None) -> list[str]:
    """Run the pitfall catalogue (``parity run --all``); return the pitfalls not caught cleanly.

    ``replies``: the catalogue run in jobs (:func:`_run_cases_in_jobs`): an iterator of each pitfall's
    ``(rows, seconds)``, in the catalogue's order; ``pitfall_seconds`` is then the sum of the pitfalls' own
    times (they ran beside other work)."""
    from parity.report.terminal import Progress, fit

    missing = _catalogue_missing(chosen)
    if missing:
        note = f"note: the pitfall catalogue is not run: it needs tf1, tf2 and torch ({', '.join(missing)} not available)"
        notes.append(note)
        _say("\n" + note)
        return []
    from parity.tools import pitfall_check as pitfalls

    t0 = time.perf_counter()
    pit = []
    names = _catalogue_names(chosen)
    spent = 0.0
    with Progress(len(names), "pitfall catalogue") as pbar:
        for name in names:
            pbar.label(name)
            if replies is not None:
                rows, seconds = next(replies)
                pit += rows
                spent += seconds
            else:
                with contextlib.redirect_stdout(sys.stderr):
                    pit += pitfalls.run_catalogue(dtypes=tuple(args.dtype or DTYPES), names=[name], workers=workers)
            pbar.advance()
    _say("\nPitfall catalogue (each wrong port must be caught and named first; each right port clean)")
    _say(fit(pitfalls.format_catalogue(pit)))
    extra["pitfalls"] = [dict(vars(p)) for p in pit]
    extra["pitfall_seconds"] = round(spent if replies is not None else time.perf_counter() - t0, 2)
    return [p.pitfall for p in pit if not (p.caught and p.named_first and p.right_clean)]


def _summary_line(results, statuses, pit_failed, wall) -> None:
    """The last line: how many cases behaved, which did not; a crash is said on stderr too, in one line."""
    from parity.run.result import error_expected

    by = {s: [n for n, st in statuses.items() if st == s] for s in ("passed", "failed", "crashed", "not_run")}
    _say(
        f"\n{len(by['passed'])}/{len(results)} cases behaved as they must"
        + (f"; FAILED: {', '.join(by['failed'])}" if by["failed"] else "")
        + (f"; CRASHED (a port raised): {', '.join(by['crashed'])}" if by["crashed"] else "")
        + (f"; not run (no port could run): {', '.join(by['not_run'])}" if by["not_run"] else "")
        + (f"; {len(pit_failed)} pitfall(s) not caught cleanly: {', '.join(pit_failed)}" if pit_failed else "")
        + f" ({wall:.1f}s)"
    )
    crashes = [(r.case.name, e) for r in results if statuses[r.case.name] == "crashed"
               for errs in r.errors.values() for p, e in errs.items() if not error_expected(r, p, e)]
    if crashes:  # exit 3 says why on stderr too, in one line (the details above have the frames)
        more = f" (and {len(crashes) - 1} more port error(s) above)" if len(crashes) > 1 else ""
        print(f"parity: error: {crashes[0][1]}{more}", file=sys.stderr, flush=True)


def _plan_missing(fw: str) -> bool:
    from parity.run.frameworks import available

    return not available(fw)


def _not_installed() -> dict[str, str]:
    from parity.run.frameworks import missing_reason

    return {fw: r for fw in FRAMEWORKS if (r := missing_reason(fw))}
