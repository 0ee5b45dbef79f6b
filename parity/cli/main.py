"""The ``parity`` command line: run the suite, record and compare traces, check a port, explain pitfalls.

Exit codes (one contract, :data:`parity.errors.EXIT_CODES`): 0 everything behaved as it
must; 1 a divergence; 2 the input is wrong (one line says which); 3 a port crashed (its
file and line shown); 4 parity itself failed (a bug-report line); 130 interrupted. Never a
bare traceback (``--traceback`` shows one), never a silent exit. Every output path is
checked (and its directory created) before any port runs, and written atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback

from parity._version import __version__
from parity.cases.case import DTYPES, PortSpec
from parity.cases.registry import all_cases, default_cases, get_case
from parity.cli.jobs import jobs_argument
from parity.cli.run import plan_ports, run_and_report, selected_frameworks
from parity.cli.outputs import add_output_args
from parity.envvars import help_text
from parity.run import workers
from parity.errors import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PORT,
    EXIT_USAGE,
    ParityError,
    PortError,
    user_frames,
)

__all__ = ["main", "build_parser", "COMMANDS"]

_EXIT_TABLE = "\n".join(f"  {code:<3d} {text}" for code, text in EXIT_CODES.items())

EPILOG = f"""\
examples:
  parity run --all                       the reference suite (what `make parity` runs)
  parity run seed000_encoder3_tiny       one case, float64 and float32
  parity run --all --frameworks torch,numpy   without TensorFlow
  parity list                            the cases
  parity record seed004_oscillate --port torch -o w.trace
  parity compare tf1.trace torch.trace      two traces, recorded anywhere
  parity record ref.py --port port.py -o ref.trace; parity record port.py --against ref.trace -o port.trace
                                         your programs, each where it runs: compare them as diff would
  parity check seed000_encoder3_clip_bites --torch-port my_port.py
  parity pitfalls / parity explain NAME  the pitfall catalogue

exit codes (the highest that applies):
{_EXIT_TABLE}
--traceback (before or after the command) shows the full traceback of an error.

{help_text()}"""


def _output_args(parser: argparse.ArgumentParser) -> None:
    """--html/--markdown/--tensorboard, and -q/-v for the terminal (run, check)."""
    add_output_args(parser, terminal=True)


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
    frameworks_help = (
        "run only the ports of these frameworks, comma-separated (tf1, tf2, tf = both, torch, numpy); "
        "the others are listed as not run. Default: every installed framework"
    )

    r = sub.add_parser("run", help="run cases (all ports, float64 and float32) and report",
                       epilog="threads: parity sets torch to 1 intra-op thread (PARITY_TORCH_THREADS), TensorFlow's eager "
                       "threads to 1 (PARITY_TF_THREADS) and numpy's BLAS to 1 "
                       "(PARITY_BLAS_THREADS) in the processes running ports: the catalogue's ports are small, thread "
                       "start-up dominates their kernels and the frameworks' workers share the cores (README, "
                       "'Environment variables'); set them higher for a large model of your own")
    r.add_argument("cases", nargs="*", metavar="CASE", help="case names (see 'parity list')")
    r.add_argument("--all", action="store_true",
                   help="every registered case but the full/realsize tiers (--tag full), then the pitfall catalogue")
    r.add_argument("--tag", help="only cases with this tag (seed, seed000, pitfall...)")
    r.add_argument("--dtype", choices=DTYPES, action="append", help="only this dtype (repeatable)")
    r.add_argument("--frameworks", metavar="LIST", help=frameworks_help)
    r.add_argument("--json", metavar="FILE", help="also write the report as JSON (docs/report-schema.json)")
    r.add_argument("--traces", metavar="DIR", help="save every trace under DIR (written step by step)")
    r.add_argument("--summary", action="store_true",
                   help="compare (and save) tensors of more than 16 elements as statistics (norms, min/max, samples)")
    r.add_argument("--no-pitfalls", action="store_true",
                   help="with --all: run the pitfall pairs as plain cases, without the catalogue section")
    r.add_argument("--jobs", type=jobs_argument, metavar="N",
                   help="run the cases in N harness processes side by side, each with its own framework workers "
                        "(default: PARITY_JOBS, else one per core up to 2 when 6 or more cases and pitfalls run, "
                        "else 1; 1 runs them in this process). Same report, same JSON")
    _output_args(r)

    ls = sub.add_parser("list", help="list the cases")
    ls.add_argument("--tag", help="only cases with this tag")
    ls.add_argument("-v", "--verbose", action="store_true", help="also list each case's ports")

    rec = sub.add_parser(
        "record", help="run one port of a case, or one of your programs, and save its trace (written step by step)",
        description="Record one port of a case (CASE --port tf1), or one of your own programs (a file defining "
        "parity_program(), as 'parity diff' takes): the reference with 'REF.py --port PORT.py' (the port is only "
        "probed, to decide the mapping), then the port, on its own machine, with 'PORT.py --against REF.trace'; "
        "'parity compare REF.trace PORT.trace' then gives diff's verdict (docs/own-model.md, docs/gpu.md).",
        epilog="examples:\n  parity record seed004_oscillate --port torch -o w.trace\n"
               "  parity record ref.py --port port.py -o ref.trace                 # where TF runs\n"
               "  PARITY_TORCH_DEVICE=cuda parity record port.py --against ref.trace -o port.trace   # the GPU\n"
               "  parity compare ref.trace port.trace                                # anywhere",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("case", metavar="CASE|PROG.py", help="a case name, or your program's file (PROG.py)")
    rec.add_argument("--port", help="a case's port: framework[:variant], e.g. tf1, torch, tf1:minimize; with a "
                                    "reference program: its port's file (PORT.py), probed for the mapping")
    rec.add_argument("--against", metavar="REF.trace",
                     help="record PROG.py as the port of this reference recording (its weights, batches, mapping)")
    rec.add_argument("--dtype", choices=DTYPES, action="append",
                     help="a case: the dtype (default float64); a program: only this dtype (repeatable; default both)")
    rec.add_argument("-o", "--output", required=True, metavar="FILE")
    rec.add_argument("--port-file", metavar="FILE.py", help="use this port module instead of the built-in one")
    rec.add_argument("--summary", action="store_true",
                     help="store tensors of more than 16 elements as statistics (norms, min/max, samples, checksum)")
    rec.add_argument("--steps", type=int, help="a reference program: training steps (default 10)")
    rec.add_argument("--seed", type=int, help="a reference program: seed of the drawn batches and masks (default 0)")
    rec.add_argument("--mapping", metavar="FILE", help="a reference program: use this mapping file")
    rec.add_argument("--save-mapping", metavar="FILE", help="a reference program: write the mapping used to FILE")
    rec.add_argument("--own-init", type=int, default=1, metavar="N",
                     help="a reference program: builds per program for the initial-distribution facts (default 1)")
    rec.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)

    cmp = sub.add_parser("compare", help="compare two trace files (the first is the reference)")
    cmp.add_argument("a", metavar="A.trace")
    cmp.add_argument("b", metavar="B.trace")
    cmp.add_argument("--json", metavar="FILE", help="also write the comparison as JSON (docs/report-schema.json)")
    cmp.add_argument("--partial", action="store_true", help="compare traces whose run was interrupted (the steps written)")
    add_output_args(cmp, tensorboard=False)

    chk = sub.add_parser("check", help="run a case with your own port in place of the reference one")
    chk.add_argument("case", metavar="CASE")
    for fw in ("torch", "tf1", "tf2"):
        chk.add_argument(f"--{fw}-port", metavar="FILE.py", help=f"your {fw} port module (see docs/ports.md)")
    chk.add_argument("--dtype", choices=DTYPES, action="append", help="only this dtype (repeatable)")
    chk.add_argument("--frameworks", metavar="LIST", help=frameworks_help)
    chk.add_argument("--json", metavar="FILE", help="also write the report as JSON (docs/report-schema.json)")
    _output_args(chk)

    sub.add_parser("pitfalls", help="list the known porting pitfalls")
    ex = sub.add_parser("explain", help="explain one pitfall: both formulas, the signature, the fix")
    ex.add_argument("name", metavar="NAME")
    d = sub.add_parser("docs", help="regenerate docs/cases.md and docs/pitfalls.md from the registries")
    d.add_argument("--out", metavar="DIR",
                   help="write them here (default: the docs/ folder of parity's own source tree, and nowhere else)")

    # Subcommands from other modules hook in here: their add_parser(sub), and COMMANDS[name] below.
    from parity.cli import diff as diffcmd  # `parity diff` (parity/cli/diff.py)

    diffcmd.add_parser(sub)

    # --traceback is accepted after the subcommand too (SUPPRESS: it does not reset the global one).
    for parser in {id(s): s for s in sub.choices.values()}.values():
        if "--traceback" not in parser._option_string_actions:
            parser.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                                help="show the full traceback of an error (for debugging)")
    return p


def _say(text: str = "") -> None:
    print(text, flush=True)


def _cmd_run(args) -> int:
    if args.all and not args.tag:
        # The pitfall pairs run once, in the catalogue section at the end (unless --no-pitfalls).
        cases = [c for c in default_cases() if not {"pitfall-right", "pitfall-wrong"} & set(c.tags)]
        if args.no_pitfalls:
            cases = default_cases()
    elif args.all or (args.tag and not args.cases):
        cases = all_cases(args.tag)
    elif args.cases:
        cases = [get_case(n) for n in args.cases]
    else:
        raise ParityError("name cases to run, or --all (see 'parity list')")
    if not cases:
        raise ParityError(f"no case has tag {args.tag!r}")
    selected_frameworks(args)  # a bad --frameworks is exit 2 before anything runs
    catalogue = args.all and not args.no_pitfalls and not args.tag
    return run_and_report(cases, args, catalogue=catalogue, workers=workers.enabled())


def _cmd_list(args) -> int:
    from parity.report.terminal import clip, row_width as columns

    cases = all_cases(args.tag)
    width = max((len(c.name) for c in cases), default=10)
    cols = columns()
    for c in cases:  # the ports are listed by 'parity list -v' and in docs/cases.md; the title fits the line
        line = f"{c.name:{width}s}  {c.tier:8s}  {c.steps:5d} steps  {c.title}"
        if getattr(args, "verbose", False):
            line += f"  [{', '.join(c.ports)}]"
        _say(clip(line, cols))
    return EXIT_OK


def _cmd_record(args) -> int:
    from parity.cli.traces import record

    return record(args)


def _cmd_compare(args) -> int:
    from parity.cli.traces import compare

    return compare(args)


def _cmd_diff(args) -> int:
    from parity.cli.diff import run

    return run(args)


def _cmd_check(args) -> int:
    from parity.run.frameworks import missing_reason
    from parity.run.runner import load_user_port

    case = get_case(args.case)
    files = {fw: getattr(args, f"{fw}_port") for fw in ("torch", "tf1", "tf2") if getattr(args, f"{fw}_port")}
    if not files:
        raise ParityError("name your port file: --torch-port FILE.py (or --tf1-port / --tf2-port)")
    chosen = selected_frameworks(args)
    for fw in files:
        reason = missing_reason(fw)
        if reason:
            raise ParityError(f"your {fw} port cannot run: {reason}")
    notes = []
    if case.expect == "diverge":
        wrong = [p for p in case.ports[1:]]
        pitfall = case.option("pitfall")
        notes.append(
            f"note: {case.name} is a must-diverge case: its {', '.join(wrong)} port makes "
            f"{'pitfall ' + pitfall if pitfall else 'a mistake'} on purpose. check runs your port in place of "
            f"that framework's ports and expects it to MATCH the others: a pass means your port does not make that mistake"
        )
        case = case.replace(expect="match")

    def plan(c):
        # The user's port replaces that framework's reference port; variants of it are left out.
        ports, skipped = plan_ports(c, chosen, replaced=set(files))
        return ports + list(files), skipped

    others, skipped = plan(case)
    others = [p for p in others if p not in files]
    if case.expect != "error" and not others:
        theirs = [p for p in case.ports if PortSpec.parse(p).framework not in files]
        if not theirs:
            raise ParityError(
                f"{case.name} has no port of another framework than {', '.join(files)} ({', '.join(case.ports)}): "
                "your port would be compared with nothing; pick a case with a tf1, tf2, torch or numpy port "
                "of another framework ('parity list'), or compare two traces with 'parity compare'"
            )
        why = "; ".join(sorted(set(skipped.values())))
        raise ParityError(f"{case.name}: none of the ports to compare yours with can run ({', '.join(theirs)}): {why}")
    with contextlib.redirect_stdout(sys.stderr):  # the port file's own prints at import: not the report's
        modules = {fw: load_user_port(path) for fw, path in files.items()}
    for fw in files:
        if fw not in {PortSpec.parse(p).framework for p in case.ports}:
            notes.append(f"note: {case.name} has no reference {fw} port; your port is compared with {', '.join(others)}")
    return run_and_report([case], args, kind="check", modules=modules, sources=files, plan=plan, notes=notes,
                          workers=workers.enabled())


def _cmd_pitfalls(args) -> int:
    from parity.pitfalls import all_pitfalls

    items = all_pitfalls()
    width = max(len(p.name) for p in items)
    from parity.report.terminal import clip, row_width as columns

    cols = columns()
    for p in items:
        _say(clip(f"{p.name:{width}s}  {p.title}", cols))
    _say(f"\n{len(items)} pitfalls; 'parity explain NAME' for the formulas and the fix")
    return EXIT_OK


def _cmd_explain(args) -> int:
    from parity.pitfalls import explain

    from parity.report.terminal import fit

    _say(fit(explain(args.name)))
    return EXIT_OK


def _cmd_docs(args) -> int:
    from parity.tools.docs import write_docs

    for path in write_docs(args.out):
        _say(f"wrote {path}")
    return EXIT_OK


COMMANDS = {
    "run": _cmd_run,
    "list": _cmd_list,
    "record": _cmd_record,
    "compare": _cmd_compare,
    "check": _cmd_check,
    "pitfalls": _cmd_pitfalls,
    "explain": _cmd_explain,
    "docs": _cmd_docs,
    "diff": _cmd_diff,
}


def _where(tb) -> str:
    frames = user_frames(tb, limit=1)
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"


def _error(text: str) -> None:
    print(f"parity: error: {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (the contract in :data:`parity.errors.EXIT_CODES`).

    ``main(["run", ...])`` runs the command in this process. ``main()`` (the ``parity`` console
    script, ``python -m parity``) runs ``sys.argv[1:]`` in a supervised child interpreter
    (:mod:`parity.cli.supervise`): a run that ends without a verdict (a port called ``os._exit``)
    is exit 3, never 0.
    """
    if argv is None:
        from parity.cli.supervise import supervise

        return supervise(sys.argv[1:], main)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(argv)  # for the JSON report's "command"
    if not args.command:
        parser.print_help(sys.stderr)
        _error("no command given (parity --help lists them)")
        return EXIT_USAGE
    show_tb = getattr(args, "traceback", False)
    try:
        if args.command in ("run", "check", "record", "diff"):  # frameworks and users' code run in this process
            from parity.errors import warnings_at_users_lines
            from parity.run.noise import filtered_stderr

            with filtered_stderr(), warnings_at_users_lines():
                return COMMANDS[args.command](args)
        return COMMANDS[args.command](args)
    except PortError as exc:
        if show_tb:
            traceback.print_exc()
        _error(str(exc))
        return EXIT_PORT
    except ParityError as exc:
        if show_tb:
            traceback.print_exc()
        _error(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # a port (or a port file at import) called sys.exit: a crash, not our exit
        if show_tb:
            traceback.print_exc()
        _error(f"a port called sys.exit({exc.code!r}) at {_where(exc.__traceback__)}: a port must raise, not exit")
        return EXIT_PORT
    except KeyboardInterrupt:
        print("parity: interrupted (Ctrl-C); no output file was left half-written", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `parity list | head`: the reader left; stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 -- anything else is parity's own bug: one line to report
        if show_tb:
            traceback.print_exc()
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        tb = traceback.extract_tb(exc.__traceback__)
        at = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
        _error(
            f"internal error: {type(exc).__name__}: {line}{at} -- a bug in parity {__version__}; "
            f"please report it with this command's output under --traceback"
        )
        return EXIT_INTERNAL
