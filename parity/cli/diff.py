"""``parity diff REF.py PORT.py``: compare your own program against its port, step by step.

Each file is a plain training program plus one function, ``parity_program()``, returning its
objects (docs/own-model.md). Exit codes: 0 the two agree (within rounding, in every dtype run);
1 they diverge (the report says where first, and which pitfall explains it); 2 bad input (a file
without the function, objects of the wrong kind, a mapping that cannot resolve); 3 the user's
own code raised.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["add_parser", "run"]

EXAMPLE = """\
examples:
  parity diff examples/seed001/tf1_convnet.py examples/seed001/torch_convnet.py
  parity diff ref.py port.py --steps 20 --dtype float64 --json out/diff.json
  parity diff ref.py port.py --save-mapping map.json     # then edit map.json and:
  parity diff ref.py port.py --mapping map.json
"""


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
    d.add_argument("--dtype", choices=("float64", "float32"), action="append", help="only this dtype (repeatable; default both)")
    d.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    d.add_argument("--mapping", metavar="FILE", help="use this mapping file instead of the automatic mapping")
    d.add_argument("--save-mapping", metavar="FILE", help="write the mapping used (JSON, editable) to FILE")
    d.add_argument("--seed", type=int, default=0, help="seed of the drawn batches and dropout masks (default 0)")
    d.add_argument("--quiet-mapping", action="store_true", help="do not print the mapping table")
    from parity.cli.outputs import add_output_args

    add_output_args(d, terminal=True)


def _say(text: str = "") -> None:
    print(text, flush=True)


def run(args) -> int:
    """Run ``parity diff``; return the exit code."""
    from parity.report import text as report
    from parity.pitfalls.diagnose import diagnose, settings_check
    from parity.errors import PortError
    from parity.io import atomic_write, check_output
    from parity.program.mapping import format_table
    from parity.cli.outputs import check_outputs, tensorboard_observer, write_reports
    from parity.program.prepare import compare_programs
    from parity.report.terminal import fit, format_cases, format_health

    if args.json:
        check_output(args.json, "--json")
    check_outputs(args)
    observer = tensorboard_observer(args)
    started = time.perf_counter()
    dtypes = tuple(args.dtype or ("float64", "float32"))
    result = compare_programs(args.reference, args.port, steps=args.steps, dtypes=dtypes, mapping=args.mapping,
                              save_mapping=args.save_mapping, seed=args.seed, observers=[observer] if observer else ())
    if not args.quiet_mapping:
        _say(f"Mapping ({args.reference} -> {args.port}; canonical layout: TF's)")
        _say(format_table(result.mapping))
        if args.save_mapping:
            _say(f"mapping saved: {args.save_mapping} (edit it and pass it back with --mapping)")
        _say()
    for note in result.notes:
        _say(fit(f"note: {note}"))
    warnings = []
    for dtype, traces in result.traces.items():
        warnings += [f"({dtype}): {w}" for w in settings_check(result.case, traces)]
    if warnings:
        _say("Settings check (before any numbers):")
        for w in warnings:
            _say(fit(f"  warning: {w}"))
    diagnoses = {}
    for i, c in enumerate(result.comparisons):
        if not c.ok:
            traces = {p: result.traces[c.dtype][p] for p in (c.a.get("port"), c.b.get("port"))}
            diagnoses[(result.case.name, i)] = diagnose(result.case, c, traces)
    _say(format_cases([result], verbose=getattr(args, "verbose", False), quiet=getattr(args, "quiet", False)))
    details = report.format_details([result], diagnoses)
    if details:
        _say("\nDivergences and refusals")
        _say(fit(details))
    health = format_health([result])
    if health and not getattr(args, "quiet", False):
        _say("\nGradient health (float64)")
        _say(health)
    wall = time.perf_counter() - started
    verdict = "agree" if result.passed else "DIVERGE"
    _say(f"\n{args.reference} vs {args.port}: {verdict} ({wall:.1f}s)")
    if args.json or getattr(args, "html", None) or getattr(args, "markdown", None):
        extra = {"mapping": result.mapping.to_json(), "wall_seconds": round(wall, 2)}
        ports = result.case.ports
        data = report.report_dict([result], diagnoses, extra, kind="diff", notes=list(result.notes),
                                  user_ports={ports[0]: args.reference, ports[1]: args.port})
        if args.json:
            with atomic_write(args.json) as fh:
                fh.write(report.strict_json(data))
            _say(f"JSON report: {args.json}")
        write_reports(args, data, _say)
    if observer is not None:
        _say(f"TensorBoard events: {args.tensorboard} (tensorboard --logdir {args.tensorboard})")
    crashed = [e for per in result.errors.values() for e in per.values() if isinstance(e, PortError) and e.exc_type != "DtypeError"]
    if crashed:  # the user's own code raised while stepping: exit 3, as for any port crash
        print(f"parity: error: {crashed[0]}", file=sys.stderr)
        return 3
    return 0 if result.passed else 1
