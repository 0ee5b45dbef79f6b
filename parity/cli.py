"""The ``parity`` command line: run the suite, record and compare traces, check a port, explain pitfalls.

Every user mistake (unknown case, missing or corrupt trace, a port file that does not
load) is one line on stderr and exit code 2; a case that must match and does not is
exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from . import __version__
from .cases import DTYPES, FRAMEWORKS, OPT_IN_TAGS, PortSpec, all_cases, get_case
from .errors import ParityError

__all__ = ["main", "build_parser"]

EPILOG = """\
examples:
  parity run --all                       the reference suite (what `make parity` runs)
  parity run seed000_encoder3_tiny       one case, float64 and float32
  parity list                            the cases
  parity record seed004_oscillate --port torch -o w.npz
  parity compare tf1.npz torch.npz       two traces, recorded anywhere
  parity check seed000_encoder3_clip_bites --torch-port my_port.py
  parity pitfalls / parity explain NAME  the pitfall catalogue

exit codes: 0 all cases behaved as they must; 1 a case that must match did not (or a
wrong port went uncaught); 2 bad input (unknown case, bad trace or port file).
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (used by the docs too)."""
    p = argparse.ArgumentParser(
        prog="parity",
        description="Run TensorFlow and PyTorch implementations side by side from identical weights and data, "
        "compare every stage of every step, and say where they first disagree and why.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"parity {__version__}")
    p.add_argument("--traceback", action="store_true", help="show the full traceback of an error (for debugging)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run cases (all ports, float64 and float32) and report")
    r.add_argument("cases", nargs="*", metavar="CASE", help="case names (see 'parity list')")
    r.add_argument("--all", action="store_true", help="every registered case, then the pitfall catalogue")
    r.add_argument("--tag", help="only cases with this tag (seed, seed000, pitfall...)")
    r.add_argument("--dtype", choices=DTYPES, action="append", help="only this dtype (repeatable)")
    r.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    r.add_argument("--traces", metavar="DIR", help="save every trace under DIR")
    r.add_argument("--no-pitfalls", action="store_true",
                   help="with --all: run the pitfall pairs as plain cases, without the catalogue section")

    ls = sub.add_parser("list", help="list the cases")
    ls.add_argument("--tag", help="only cases with this tag")

    rec = sub.add_parser("record", help="run one port of a case and save its trace (.npz)")
    rec.add_argument("case", metavar="CASE")
    rec.add_argument("--port", required=True, help="framework[:variant], e.g. tf1, torch, tf1:minimize")
    rec.add_argument("--dtype", choices=DTYPES, default="float64")
    rec.add_argument("-o", "--output", required=True, metavar="FILE")
    rec.add_argument("--port-file", metavar="FILE.py", help="use this port module instead of the built-in one")
    rec.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)

    cmp = sub.add_parser("compare", help="compare two trace files (the first is the reference)")
    cmp.add_argument("a", metavar="A.npz")
    cmp.add_argument("b", metavar="B.npz")
    cmp.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")

    chk = sub.add_parser("check", help="run a case with your own port in place of the reference one")
    chk.add_argument("case", metavar="CASE")
    for fw in ("torch", "tf1", "tf2"):
        chk.add_argument(f"--{fw}-port", metavar="FILE.py", help=f"your {fw} port module (see docs/ports.md)")
    chk.add_argument("--dtype", choices=DTYPES, action="append", help="only this dtype (repeatable)")
    chk.add_argument("--json", metavar="FILE", help="also write the report as JSON")

    sub.add_parser("pitfalls", help="list the known porting pitfalls")
    ex = sub.add_parser("explain", help="explain one pitfall: both formulas, the signature, the fix")
    ex.add_argument("name", metavar="NAME")
    sub.add_parser("docs", help="regenerate docs/cases.md and docs/pitfalls.md from the registries")
    from . import diffcmd  # `parity diff` (parity/diffcmd.py)

    diffcmd.add_parser(sub)
    return p


def _say(text: str = "") -> None:
    print(text, flush=True)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_and_report(cases, args, *, modules=None, sources=None, port_override=None, catalogue=False) -> int:
    from . import report
    from .diagnose import diagnose, settings_check
    from .runner import run_case
    from .trace import save

    started = time.perf_counter()
    results, warnings = [], []
    for case in cases:
        t0 = time.perf_counter()
        ports = port_override(case) if port_override else None
        result = run_case(case, dtypes=args.dtype, ports=ports, modules=modules, sources=sources)
        results.append(result)
        status = "ok" if result.passed else "FAILED"
        _progress(f"  {case.name:40s} {status:6s} {time.perf_counter() - t0:6.1f}s")
        for dtype, traces in result.traces.items():
            warnings += [f"{case.name} ({dtype}): {w}" for w in settings_check(case, traces)]
        if getattr(args, "traces", None):
            for dtype, traces in result.traces.items():
                for port, trace in traces.items():
                    save(trace, os.path.join(args.traces, f"{case.name}.{port.replace(':', '-')}.{dtype}.npz"))
    diagnoses = {}
    for r in results:
        for i, c in enumerate(r.comparisons):
            if not c.ok:
                pa, pb = c.a.get("port"), c.b.get("port")
                traces = {p: r.traces[c.dtype][p] for p in (pa, pb)}
                diagnoses[(r.case.name, i)] = diagnose(r.case, c, traces)
    if warnings:
        _say("Settings check (before any numbers):")
        for w in warnings:
            _say(f"  warning: {w}")
        _say()
    _say(report.format_table(results))
    details = report.format_details(results, diagnoses)
    if details:
        _say("\nDivergences and refusals")
        _say(details)
    health = report.format_health(results)
    if health:
        _say("\nGradient health (float64)")
        _say(health)
    failed = [r.case.name for r in results if not r.passed]
    extra = {}
    pit_failed = []
    if catalogue:
        from .pitfalls import catalogue as pitfalls

        t0 = time.perf_counter()
        pit = pitfalls.run_catalogue(dtypes=tuple(args.dtype or DTYPES))
        _say("\nPitfall catalogue (each wrong port must be caught and named first; each right port clean)")
        _say(pitfalls.format_catalogue(pit))
        pit_failed = [p.pitfall for p in pit if not (p.caught and p.named_first and p.right_clean)]
        extra["pitfalls"] = [dict(vars(p)) for p in pit]
        extra["pitfall_seconds"] = round(time.perf_counter() - t0, 2)
    wall = time.perf_counter() - started
    extra["wall_seconds"] = round(wall, 2)
    _say(
        f"\n{len(results) - len(failed)}/{len(results)} cases behaved as they must"
        + (f"; {len(pit_failed)} pitfall(s) not caught cleanly: {', '.join(pit_failed)}" if catalogue and pit_failed else "")
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + f" ({wall:.1f}s)"
    )
    if getattr(args, "json", None):
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            fh.write(report.to_json(results, diagnoses, extra))
        _say(f"JSON report: {args.json}")
    return 1 if failed or pit_failed else 0


def _cmd_run(args) -> int:
    if args.all and not args.tag:
        # The pitfall pairs run once, in the catalogue section at the end (unless --no-pitfalls).
        cases = [c for c in all_cases() if not {"pitfall-right", "pitfall-wrong", *OPT_IN_TAGS} & set(c.tags)]
        if args.no_pitfalls:
            cases = [c for c in all_cases() if not set(OPT_IN_TAGS) & set(c.tags)]
    elif args.all or (args.tag and not args.cases):
        cases = all_cases(args.tag)
    elif args.cases:
        cases = [get_case(n) for n in args.cases]
    else:
        raise ParityError("name cases to run, or --all (see 'parity list')")
    if not cases:
        raise ParityError(f"no case has tag {args.tag!r}")
    catalogue = args.all and not args.no_pitfalls and not args.tag
    return _run_and_report(cases, args, catalogue=catalogue)


def _cmd_list(args) -> int:
    cases = all_cases(args.tag)
    width = max((len(c.name) for c in cases), default=10)
    for c in cases:
        _say(f"{c.name:{width}s}  {c.steps:4d} steps  {', '.join(c.ports):40s}  {c.title}")
    return 0


def _cmd_record(args) -> int:
    from .runner import load_user_port, run_port
    from .trace import save

    case = get_case(args.case)
    PortSpec.parse(args.port)
    module = load_user_port(args.port_file) if args.port_file else None
    trace = run_port(case, args.port, args.dtype, module=module, source=args.port_file, isolate=not args.in_process)
    path = save(trace, args.output)
    _say(f"recorded {case.name} / {args.port} / {args.dtype}: {len(trace.steps)} steps -> {path}")
    return 0


def _cmd_compare(args) -> int:
    from . import report
    from .cases import Cost
    from .compare import compare
    from .diagnose import diagnose
    from .trace import load

    a, b = load(args.a), load(args.b)
    try:
        case = get_case(a.case)
        cost = case.cost
    except ParityError:
        case, cost = None, Cost()
    result = compare(a, b, cost=cost)
    diags = diagnose(case, result, {a.port: a, b.port: b}) if (case is not None and not result.ok) else ()
    _say(f"{args.a} ({a.port}, {a.manifest.get('framework_version')}, {a.manifest.get('device')}) vs "
         f"{args.b} ({b.port}, {b.manifest.get('framework_version')}, {b.manifest.get('device')})")
    for stage, d in result.worst_by_stage().items():
        _say(f"  {report.STAGE_ABBREV[stage]:6s} worst {d.max_rel:.3g} relative ({d.units:.2g} of the {result.dtype} bound) at step {d.step}, {d.name}")
    _say(report.format_comparison(result, diags))
    if args.json:
        from .runner import CaseResult

        if case is not None:
            with open(args.json, "w") as fh:
                fh.write(report.to_json([CaseResult(case=case, comparisons=[result])], {(case.name, 0): diags}))
    return 0 if result.ok else 1


def _cmd_check(args) -> int:
    from .runner import load_user_port

    case = get_case(args.case)
    files = {fw: getattr(args, f"{fw}_port") for fw in ("torch", "tf1", "tf2") if getattr(args, f"{fw}_port")}
    if not files:
        raise ParityError("name your port file: --torch-port FILE.py (or --tf1-port / --tf2-port)")
    modules = {fw: load_user_port(path) for fw, path in files.items()}

    def ports(c):
        # The user's port replaces that framework's reference port; variants of it are left out.
        kept = [p for p in c.ports if PortSpec.parse(p).framework not in files]
        return kept + list(files)

    for fw in files:
        if fw not in {PortSpec.parse(p).framework for p in case.ports}:
            _progress(f"note: {case.name} has no reference {fw} port; your port is compared with {', '.join(case.ports)}")
    return _run_and_report([case], args, modules=modules, sources=files, port_override=ports)


def _cmd_pitfalls(args) -> int:
    from .pitfalls import all_pitfalls

    items = all_pitfalls()
    width = max(len(p.name) for p in items)
    for p in items:
        _say(f"{p.name:{width}s}  {p.title}")
    _say(f"\n{len(items)} pitfalls; 'parity explain NAME' for the formulas and the fix")
    return 0


def _cmd_explain(args) -> int:
    from .pitfalls import explain

    _say(explain(args.name))
    return 0


def _cmd_docs(args) -> int:
    from .docs import write_docs

    for path in write_docs():
        _say(f"wrote {path}")
    return 0


COMMANDS = {
    "run": _cmd_run,
    "list": _cmd_list,
    "record": _cmd_record,
    "compare": _cmd_compare,
    "check": _cmd_check,
    "pitfalls": _cmd_pitfalls,
    "explain": _cmd_explain,
    "docs": _cmd_docs,
    "diff": lambda args: __import__("parity.diffcmd", fromlist=["run"]).run(args),
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except ParityError as exc:
        if args.traceback:
            traceback.print_exc()
        print(f"parity: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("parity: interrupted", file=sys.stderr)
        return 130
