"""``parity diff REF.py PORT.py``: compare your own program against its port, step by step.

Each file is a plain training program plus one function, ``parity_program()``, returning its
objects (docs/own-model.md). Exit codes: 0 the two agree (within rounding, in every dtype run);
1 they diverge (the report says where first, and which pitfall explains it); 2 bad input (a file
without the function, objects of the wrong kind, a mapping that cannot resolve); 3 the user's
own code raised.

The report begins with both programs' facts (:mod:`parity.program.facts`: read from their own
objects, side by side, before any number; divergences are named from them first) and ends, after the
verdict, with what the comparison does not cover (initialisers, each side's own data, schedule length).

Each program is captured and stepped in worker processes of its own (:mod:`parity.program.remote`: one
per program and run, so no process imports both frameworks or holds more than one model); this process
holds the batches, the mapping and the streaming comparison. ``PARITY_WORKERS=0`` runs both here.
"""

from __future__ import annotations

import contextlib
import sys
import time

__all__ = ["add_parser", "run"]

EXAMPLE = """\
examples:
  parity diff examples/seed001/tf1_convnet.py examples/seed001/torch_convnet.py
  parity diff ref.py port.py --steps 20 --dtype float64 --json out/diff.json
  parity diff ref.py port.py --save-mapping map.json     # then edit map.json and:
  parity diff ref.py port.py --mapping map.json

threads: the port's torch runs with 1 intra-op thread unless PARITY_TORCH_THREADS says otherwise, a
TensorFlow program's eager ops with 1 (PARITY_TF_THREADS; a TF1 session parity opens: 1), numpy's BLAS
with 1 (PARITY_BLAS_THREADS): the two programs' workers share the cores. Set them higher for a large
model (README, 'Environment variables').
"""


def _seed(text: str) -> int:
    """``--seed``: an integer numpy and the frameworks accept as a seed (0 .. 2**32 - 1)."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: an integer from 0 to 4294967295") from None
    if not 0 <= v < 2 ** 32:
        raise argparse.ArgumentTypeError(f"invalid seed {v}: an integer from 0 to 4294967295")
    return v


def add_parser(subparsers) -> None:
    """Add the ``diff`` subcommand to the ``parity`` command line."""
    import argparse

    d = subparsers.add_parser(
        "diff",
        help="compare your own program against its port (each file defines parity_program())",
        description="Run two plain training programs (TF1 / Keras / PyTorch) from the same weights and data and compare "
        "every stage of every step. Each file defines parity_program() returning its objects (docs/own-model.md).",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("reference", metavar="REF.py", help="the reference program (e.g. the TF1 original)")
    d.add_argument("port", metavar="PORT.py", help="the port checked against it (e.g. the PyTorch port)")
    d.add_argument("--steps", type=int, default=10, help="training steps (default 10)")
    d.add_argument("--dtype", choices=("float64", "float32"), action="append", help="only this dtype (repeatable; default both); "
                   "float32 alone still runs the float64 runs, unreported, to measure the float32 envelope")
    d.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    d.add_argument("--mapping", metavar="FILE", help="use this mapping file instead of the automatic mapping")
    d.add_argument("--save-mapping", metavar="FILE", help="write the mapping used (JSON, editable) to FILE")
    d.add_argument("--seed", type=_seed, default=0, help="seed of the drawn batches and dropout masks (default 0)")
    d.add_argument("--quiet-mapping", action="store_true", help="do not print the mapping table")
    d.add_argument("--own-init", type=int, default=1, metavar="N",
                   help="build each program N times with its own initialisers and compare the pooled initial "
                        "distributions per parameter (family, scale, the formula they match; default 1 build)")
    from parity.cli.outputs import add_output_args

    add_output_args(d, terminal=True)


def run(args) -> int:
    """Run ``parity diff``; return the exit code (:func:`parity.run.result.exit_code` of the case's verdict)."""
    from parity.cli.outputs import check_outputs, same_path, tensorboard_observer
    from parity.program.mapping import load_mapping
    from parity.program.prepare import compare_programs
    from parity.program.remote import enabled as workers_enabled
    from parity.report.terminal import Progress

    # every output (--json, --save-mapping, the reports) and the mapping file, before any program runs
    inputs = {"REF.py": args.reference, "PORT.py": args.port}
    if args.mapping and not same_path(args.mapping, args.save_mapping):
        inputs["--mapping"] = args.mapping  # (--save-mapping onto --mapping rewrites the mapping: allowed)
    check_outputs(args, inputs=inputs)
    if args.own_init < 1:
        from parity.errors import ParityError

        raise ParityError(f"--own-init must be >= 1 (builds of each program), got {args.own_init}")
    mapping = load_mapping(args.mapping) if args.mapping else None
    observer = tensorboard_observer(args)
    started = time.perf_counter()
    asked = tuple(dict.fromkeys(args.dtype or ("float64", "float32")))
    # float32 alone: the float64 runs still run, unreported, to measure each program's float32 rounding (the
    # envelope): without them a deep network's float32 rounding reads as a difference (corpus 05, a right port)
    dtypes = ("float64", "float32") if asked == ("float32",) else asked
    # the user's own prints (import, capture, every step) go to stderr: stdout is the report's alone
    with Progress(len(dtypes) * args.steps, "steps") as bar, contextlib.redirect_stdout(sys.stderr):
        observers = [StepCounter(bar)] + ([observer] if observer else [])
        result = compare_programs(args.reference, args.port, steps=args.steps, dtypes=dtypes, mapping=mapping,
                                  save_mapping=args.save_mapping, seed=args.seed, observers=observers,
                                  workers=workers_enabled(), keep_workers=True, float64_optional=dtypes != asked)
        if dtypes != asked:
            _float32_only(result)
        try:
            facts, rows, covered = read_facts(result, args.own_init)
        finally:
            if result.pool is not None:
                result.pool.close()
    return report(args, result, facts, rows, covered, args.reference, args.port, time.perf_counter() - started,
                  observer=observer)


def _float32_only(result) -> None:
    """Keep a float32-only run's float32 part of ``result``; mark whether its envelope was measured (the float64 runs
    ran: each program's float32 drift from its float64 twin) or not (a program could not run in float64)."""
    ran = any(c.dtype == "float64" for c in result.comparisons)
    result.comparisons = [c for c in result.comparisons if c.dtype == "float32"]
    result.traces.pop("float64", None)
    result.errors.pop("float64", None)
    result.float32_envelope = ran


def report(args, result, facts, rows, covered, reference: str, port: str, wall: float, observer=None,
           heading: str | None = None) -> int:
    """Print (and write) ``parity diff``'s report of ``result``; return the exit code. Also the report of
    ``parity compare`` of two programs' recordings (:mod:`parity.program.record_compare`)."""
    from parity.cli.report import Findings, say, show, write_files
    from parity.program.mapping import format_table
    from parity.report.facts import facts_json, format_facts, format_not_covered
    from parity.report.jsonreport import report_dict
    from parity.report.terminal import fit
    from parity.run.result import cannot_run_dtype, exit_code

    if heading:
        say(heading)
        say()
    say("Program facts (read from each program's own objects, before any number; ! = they differ)")
    say(format_facts(rows, reference, port))
    say()
    if not getattr(args, "quiet_mapping", False):
        say(f"Mapping ({reference} -> {port}; canonical layout: TF's)")
        say(wrap_lists(format_table(result.mapping)))
        if getattr(args, "save_mapping", None):
            say(f"mapping saved: {args.save_mapping} (edit it and pass it back with --mapping)")
        say()
    shown = set() if getattr(args, "quiet_mapping", False) else set(result.mapping.notes)  # the mapping table printed its own notes
    for note in result.notes:
        if note not in shown:
            say(fit(f"note: {note}"))
    findings = Findings()
    findings.examine(result, named=False, facts=facts)
    show([result], findings, args, details_title="Divergences and refusals")
    unnamed = [c for i, c in enumerate(result.comparisons) if not c.ok and not findings.diagnoses.get((result.case.name, i))]
    differ = [r for r in rows if r.status == "differs"]
    if unnamed and differ:
        say("\nUnnamed divergence: the facts that differ (none was shown to explain it; the cause may lie elsewhere, "
            "at the location above)")
        for r in differ:
            say(fit(f"  {r.key}: {r.reference!r} vs {r.port!r}"))
    if getattr(result, "float32_envelope", False):
        covered = list(covered) + [
            "float32 only: the float64 runs ran to measure each program's float32 rounding (the float32 envelope) "
            "and are not reported"]
    elif result.comparisons and {c.dtype for c in result.comparisons} == {"float32"}:
        # no float64 twins: the float32 envelope (each program's own float32 drift) was not measured
        covered = list(covered) + [
            "float32 only: without the float64 runs the float32 envelope was not measured, so a float32 difference "
            "beyond the model bound may be rounding that the network's depth amplifies (docs/tolerance.md); "
            "a float32 divergence here is not told from rounding: run both dtypes (the default) to tell"]
        if any(not c.ok for c in result.comparisons):
            say(fit("note: float32 only: this divergence was judged without the float64 runs, which measure how far "
                    "each program's own float32 rounding goes; it may be rounding (run both dtypes, the default)"))
    status = result.status
    code = exit_code([status])
    verdict = {"passed": "agree", "failed": "DIVERGE", "crashed": "CRASHED", "not_run": "NOT RUN"}[status]
    say(f"\n{reference} vs {port}: {verdict} ({wall:.1f}s)")
    say("\nWhat this comparison does not cover (read before taking \"agree\" for \"trains the same\")")
    say(fit(format_not_covered(covered)))
    data = None
    if args.json or getattr(args, "html", None) or getattr(args, "markdown", None):
        extra = {"mapping": result.mapping.to_json(), "wall_seconds": round(wall, 2),
                 "facts": facts_json(facts, rows, covered)}
        ports = result.case.ports
        data = report_dict([result], findings.diagnoses, extra, kind="diff", notes=list(result.notes), code=code,
                           user_ports={ports[0]: reference, ports[1]: port})
    write_files(args, data, observer)
    if status == "crashed":  # the user's own code raised while stepping: exit 3, as for any port crash
        crashed = [e for per in result.errors.values() for e in per.values() if not cannot_run_dtype(e)]
        print(f"parity: error: {crashed[0]}", file=sys.stderr)
    return code


def read_facts(result, builds: int = 1):
    """``(facts, rows, not covered)`` of both programs (:mod:`parity.program.facts`): each captured
    afresh, so its initialisers are as it constructs them, before parity copies the reference's weights."""
    from parity.errors import ParityError
    from parity.program.facts import compare_facts, not_covered, program_facts
    pool = getattr(result, "pool", None)
    # each program captured afresh in its worker, as it was compared (in-process without workers)
    capture = (lambda program, dtype: pool.capture(program, dtype, phase="while its facts were read")) if pool else None
    try:
        facts = program_facts(result.program_run, builds=builds, capture=capture)
    except ParityError as exc:  # the user's program raised when built once more: the comparison still stands
        facts, why = None, f"the programs' facts could not be read: {exc}"
    except Exception as exc:  # noqa: BLE001 -- parity's own bug in reading facts must not lose the comparison
        facts, why = None, f"the programs' facts could not be read (a bug in parity, please report it): {type(exc).__name__}: {exc}"
    if facts is None:
        facts = {"reference": {}, "port": {}, "init": [], "data": {}}
        return facts, [], [why] + not_covered(facts)
    return facts, compare_facts(facts["reference"], facts["port"]), not_covered(facts)


def wrap_lists(table: str) -> str:
    """The mapping table with its long lists ("not compared (...): a, b, ...", notes) wrapped at the
    separators to the width (a terminal's; 100 in a file): no name is cut, none is lost. The table's
    rows stay as they are."""
    from parity.report.terminal import fit

    return "\n".join(fit(line) if line.startswith(("not compared", "note:")) else line for line in table.splitlines())


class StepCounter:
    """A per-step observer (:func:`parity.run.runner.run_case`'s ``observers``) advancing ``bar`` once per
    training step of each dtype: on the first port that started in that dtype (the reference)."""

    def __init__(self, bar):
        self.bar = bar
        self.first: dict[str, str] = {}
        self.steps: dict[str, int] = {}

    def start(self, case, port, dtype, initial) -> None:
        self.first.setdefault(dtype, port)

    def step(self, case, port, dtype, step) -> None:
        if self.first.get(dtype) == port:
            self.steps[dtype] = self.steps.get(dtype, 0) + 1
            self.bar.label(f"{dtype} step {self.steps[dtype]}")
            self.bar.advance()

    def finish(self, case, port, dtype) -> None:
        pass

    def restart(self) -> None:
        """The run starts over, with the envelope's conditioning run (a tensor needed it: docs/tolerance.md)."""
        self.first, self.steps = {}, {}
        self.bar.restart()
        self.bar.label("again, with the conditioning run")
