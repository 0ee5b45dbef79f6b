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

__all__ = ["record", "compare"]


def record(args) -> int:
    """``parity record``: run one port of a case and write its trace, step by step; return the exit code."""
    from parity.run.frameworks import missing_reason
    from parity.cli.outputs import check_distinct
    from parity.io import atomic_path, check_output
    from parity.run.runner import load_user_port, record_port

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
