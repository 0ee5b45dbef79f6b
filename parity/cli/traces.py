"""``parity record`` and ``parity compare``: a port's trace written to a file, and two trace files compared.

A trace file recorded on one machine (TensorFlow on a CPU) is compared with one recorded on another
(torch on a GPU without TensorFlow); the verdict and the exit code are :mod:`parity.run.result`'s.
"""

from __future__ import annotations

import os

from parity.cases.case import PortSpec
from parity.cases.registry import get_case
from parity.cli.report import say as _say
from parity.errors import EXIT_OK, ParityError

__all__ = ["record", "compare", "record_program", "compare_programs_recorded"]


def record(args) -> int:
    """``parity record``: run one port of a case and write its trace, step by step; return the exit code."""
    from parity.run.frameworks import missing_reason
    from parity.cli.outputs import check_distinct
    from parity.io import atomic_path, check_output
    from parity.run.runner import load_user_port, record_port

    if _is_program(args.case):
        return record_program(args)
    if args.against or args.steps is not None or args.seed is not None or args.mapping or args.save_mapping:
        raise ParityError("--against, --steps, --seed, --mapping and --save-mapping record a program (PROG.py), "
                          f"not a case ({args.case})")
    if not args.port:
        raise ParityError(f"name the port of {args.case} to record: --port framework[:variant] (e.g. --port torch)")
    if args.dtype and len(args.dtype) > 1:
        raise ParityError("a case's port is recorded in one dtype: give --dtype once")
    args.dtype = args.dtype[0] if args.dtype else "float64"
    case = get_case(args.case)
    spec = PortSpec.parse(args.port)
    if os.path.isdir(args.output):
        raise ParityError(f"cannot write -o {args.output}: it is a directory")
    output = args.output if os.path.splitext(args.output)[1] else args.output + ".trace"
    check_distinct(args, inputs={"--port-file": args.port_file})
    check_output(output, "-o")
    reason = missing_reason(spec.framework)
    if reason:
        raise ParityError(f"cannot record a {spec.framework} port: {reason}")
    module = load_user_port(args.port_file) if args.port_file else None
    # Written step by step (memory flat in the steps) into the temporary file, renamed when complete.
    with atomic_path(output) as tmp:
        _, steps = record_port(case, args.port, args.dtype, tmp, module=module, source=args.port_file,
                               isolate=not args.in_process, summary=args.summary)
    _say(f"recorded {case.name} / {args.port} / {args.dtype}: {steps} steps -> {output}")
    return EXIT_OK


def compare(args) -> int:
    """``parity compare A B``: compare two trace files, streamed; return the exit code (the case's verdict)."""
    from parity.cases.case import Case, Cost, Data
    from parity.cli.outputs import check_outputs, wants_report_dict
    from parity.cli.report import write_files
    from parity.pitfalls.diagnose import diagnose
    from parity.report import text as report
    from parity.report.jsonreport import report_dict
    from parity.run.result import CaseResult, exit_code
    from parity.comparison.files import compare_files
    from parity.trace.file import open_trace

    check_outputs(args, inputs={"A.trace": args.a, "B.trace": args.b})
    from parity.program.record_compare import is_recording

    if is_recording(args.a) or is_recording(args.b):
        return compare_programs_recorded(args)
    head = open_trace(args.a)  # the case (and its error model) from A's manifest
    manifest = head[0] if isinstance(head, tuple) else head.manifest
    if not isinstance(head, tuple):
        head.close()
    try:
        case = get_case(manifest.get("case", "?"))
        cost = case.cost
    except ParityError:
        case, cost = None, Cost()
    # Streamed: each step is read, compared and dropped (the windows keep what the diagnosis reads).
    result, a, b = compare_files(args.a, args.b, cost=cost, partial=args.partial)
    for path, t in ((args.a, a), (args.b, b)):
        if t.interrupted is not None and not args.partial:
            raise ParityError(f"{path}: trace interrupted after {t.interrupted} steps (its run did not finish); "
                              "--partial compares the steps it holds")
    notes = _partial_note(args, a, b, result.steps)
    diags = diagnose(case, result, {a.port: a, b.port: b}) if (case is not None and not result.ok) else ()
    _say(f"{args.a} ({a.port}, {a.manifest.get('framework_version')}, {a.manifest.get('device')}) vs "
         f"{args.b} ({b.port}, {b.manifest.get('framework_version')}, {b.manifest.get('device')})")
    if case is None:
        _say(f"  note: case {a.case!r} is not in this registry: compared with the default error model (Cost())")
    for note in notes:
        _say(f"  note: {note}")
    for stage, d in result.worst_by_stage().items():
        _say(f"  {report.STAGE_ABBREV[stage]:6s} worst {d.max_rel:.3g} relative ({d.units:.2g} of the {result.dtype} bound) at step {d.step}, {d.name}")
    _say(report.format_comparison(result, diags))
    stand_in = case or Case(name=a.case, module="?", title="", ports=("numpy",), params={}, data=Data("constant"), steps=0)
    traces = {a.port: a, b.port: b} if a.port != b.port else {a.port: a}
    res = CaseResult(case=stand_in.replace(expect="match"), traces={result.dtype: traces}, comparisons=[result])
    code = exit_code([res.status])
    data = None
    if args.json or wants_report_dict(args):
        data = report_dict([res], {(stand_in.name, 0): list(diags)}, kind="compare", code=code, notes=notes,
                           command=args.argv, unregistered=() if case is not None else (stand_in.name,))
    write_files(args, data)
    return code


def _partial_note(args, a, b, compared: int) -> list[str]:
    """``--partial`` with a cut-off trace: how many steps were compared, and which were not."""
    if not args.partial or (a.interrupted is None and b.interrupted is None):
        return []
    held = ", ".join(f"{path} holds {t.n_steps}" + (" (interrupted)" if t.interrupted is not None else "")
                     for path, t in ((args.a, a), (args.b, b)))
    rest = max(a.n_steps, b.n_steps) - compared
    return [f"--partial: compared the {compared} steps both traces hold ({held})"
            + (f"; the other {rest} step(s) of the longer one were not compared" if rest else "")]


def _is_program(name: str) -> bool:
    """Whether ``parity record``'s first argument is a program's file (a case name never ends in .py)."""
    return name.endswith(".py") or os.path.isfile(name)


def record_program(args) -> int:
    """``parity record PROG.py``: a reference program (``--port PORT.py``) or a port (``--against REF.trace``)
    recorded with its runs and facts (:mod:`parity.program.record`); return the exit code."""
    import contextlib
    import sys
    import time

    from parity.cli.outputs import check_distinct
    from parity.io import check_output
    from parity.program.mapping import load_mapping
    from parity.program.record import record_port, record_reference

    if os.path.isdir(args.output):
        raise ParityError(f"cannot write -o {args.output}: it is a directory")
    output = args.output if os.path.splitext(args.output)[1] else args.output + ".trace"
    if args.port_file or args.in_process:
        raise ParityError("--port-file records a case's port; a program is recorded from its own file")
    if bool(args.port) == bool(args.against):
        raise ParityError(f"record {args.case} as the reference (--port PORT.py: its port, probed for the mapping) "
                          "or as the port (--against REF.trace: the reference's recording), one of the two")
    if args.port and not _is_program(args.port):
        raise ParityError(f"--port {args.port}: with a program ({args.case}), --port is its port's file (PORT.py), "
                          "probed for the mapping")
    started = time.perf_counter()
    if args.against:
        given = [o for o, v in (("--steps", args.steps), ("--seed", args.seed), ("--mapping", args.mapping),
                                ("--save-mapping", args.save_mapping), ("--dtype", args.dtype)) if v]
        if given:
            raise ParityError(f"{', '.join(given)}: a port is recorded with the reference recording's own "
                              f"(its steps, seed, dtypes and mapping are in {args.against})")
        check_distinct(args, inputs={"PROG.py": args.case, "--against": args.against})
        check_output(output, "-o")
        with _progress(args.against) as observers, contextlib.redirect_stdout(sys.stderr):  # user's prints: stderr
            info = record_port(args.case, args.against, output, summary=args.summary or None, observers=observers)
        role = f"port of {info['reference']}"
    else:
        steps = 10 if args.steps is None else args.steps
        if steps < 1:
            raise ParityError("--steps must be >= 1")
        if args.own_init < 1:
            raise ParityError(f"--own-init must be >= 1 (builds of each program), got {args.own_init}")
        inputs = {"PROG.py": args.case, "--port": args.port}
        if args.mapping:
            inputs["--mapping"] = args.mapping
        check_distinct(args, inputs=inputs)
        check_output(output, "-o")
        mapping = load_mapping(args.mapping) if args.mapping else None
        dtypes = tuple(args.dtype or ("float64", "float32"))
        with _progress(None, len(dtypes) * steps) as observers, contextlib.redirect_stdout(sys.stderr):
            info = record_reference(args.case, args.port, output, steps=steps, dtypes=dtypes,
                                    seed=0 if args.seed is None else args.seed, mapping=mapping,
                                    save_mapping=args.save_mapping, summary=args.summary, builds=args.own_init,
                                    observers=observers)
        role = f"reference (port {info['port']} probed)"
    case = info["case"]
    _say(f"recorded {args.case} as the {role}: {case['steps']} steps, {', '.join(info['dtypes'])}"
         f"{', summaries' if info.get('summary') else ''} -> {output} ({time.perf_counter() - started:.1f}s)")
    return EXIT_OK


class _progress:
    """The steps' progress bar of a program's recording (``parity diff``'s): ``with _progress(...) as observers``."""

    def __init__(self, against: str | None, total: int | None = None):
        if total is None:  # a port: the reference recording's steps, in each of its dtypes
            from parity.program.record_file import program_info

            info = program_info(against) or {}
            case = info.get("case") or {}
            total = int(case.get("steps", 0)) * max(1, len(case.get("dtypes", [])))
        self.total = total

    def __enter__(self):
        from parity.cli.diff import StepCounter
        from parity.report.terminal import Progress

        self.bar = Progress(self.total, "steps")
        return [StepCounter(self.bar.__enter__())]

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)


def compare_programs_recorded(args) -> int:
    """``parity compare REF.trace PORT.trace`` of two programs' recordings: ``parity diff``'s report."""
    import time

    from parity.cli.diff import report
    from parity.program.facts import compare_facts, not_covered
    from parity.program.record_compare import compare_recordings

    started = time.perf_counter()
    result, ri, pi, facts = compare_recordings(args.a, args.b, partial=args.partial)
    if isinstance(facts, dict) and "reference" in facts and "port" in facts:
        rows, covered = compare_facts(facts["reference"], facts["port"]), not_covered(facts)
    else:
        why = (facts or {}).get("error", "the recording holds no facts") if isinstance(facts, dict) else "no facts"
        facts = {"reference": {}, "port": {}, "init": [], "data": {}}
        rows, covered = [], [why] + not_covered(facts)
    first = next(iter(result.traces.values()))
    rm, pm = (first[label].manifest for label in result.case.ports)
    heading = (f"{args.a} (reference {ri['reference']}: {rm.get('framework')} {rm.get('framework_version')}, "
               f"{rm.get('device')}) vs {args.b} (port {pi['port']}: {pm.get('framework')} "
               f"{pm.get('framework_version')}, {pm.get('device')}): parity diff's comparison of the two recordings")
    return report(args, result, facts, rows, covered, ri["reference"], pi["port"], time.perf_counter() - started,
                  heading=heading)
