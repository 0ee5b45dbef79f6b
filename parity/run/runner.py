"""Run ports of a case from the same weights and data, step by step side by side, and compare them.

:func:`run_case` runs every port of every dtype in lockstep and compares each step as it
arrives (:class:`~parity.comparison.comparator.Comparator`), keeping a :class:`~parity.trace.memory.Window` per
port: memory does not grow with the steps. :func:`run_port` returns one port's whole trace
(tests, short runs); :func:`record_port` writes one to a file step by step. The port
boundary (type checks, copies, detaching) is :mod:`parity.run.boundary`.

Computation only: :mod:`parity.report.text` formats what this returns.
"""

from __future__ import annotations

import dataclasses
import gc
import subprocess
from types import ModuleType
from typing import Iterable, Mapping, Sequence

from parity.run.boundary import PORT_FUNCTIONS, PortRun, load_port_module, load_user_port
from parity.cases.case import Case, PortSpec
from parity.cases.registry import get_case
from parity.run.result import CaseResult
from parity.cases.data import given_batches, iter_batches
from parity.errors import ParityError
from parity.trace.memory import Trace
from parity.comparison.files import compare_files

__all__ = [
    "load_port_module",
    "load_user_port",
    "run_port",
    "record_port",
    "run_case",
    "run_pitfall",
    "compare_files",
    "CaseResult",
    "PORT_FUNCTIONS",
]

def run_port(
    case: Case,
    port: str,
    dtype: str,
    *,
    module: ModuleType | None = None,
    source: str | None = None,
    isolate: bool = True,
) -> Trace:
    """Run one port of ``case`` in ``dtype`` and return its whole trace (in memory).

    Args:
        case: the case.
        port: ``framework[:variant]``.
        dtype: "float64" or "float32".
        module: a port module to use instead of the built-in one (a user's port).
        source: where ``module`` came from, for the manifest.
        isolate: run ports the case marks ``isolate`` in a subprocess (False inside that subprocess).

    Raises:
        PortError: the port's framework raised (building, loading or stepping).
        ParityError: the port broke the protocol (missing parameters, wrong shapes).
    """
    PortSpec.parse(port)
    run = PortRun(case, port, dtype, module=module, source=source, isolate=isolate)
    try:
        run.open()
        trace = Trace(manifest=dict(run.manifest), initial=run.initial)
        for batch in iter_batches(case, dtype):
            trace.steps.append(run.step(batch))
    finally:
        run.close()
    trace.manifest["seconds"] = round(run.seconds, 4)
    return trace


def record_port(
    case: Case,
    port: str,
    dtype: str,
    path: str,
    *,
    module: ModuleType | None = None,
    source: str | None = None,
    isolate: bool = True,
    summary: bool = False,
) -> tuple[str, int]:
    """Run one port and write its trace to ``path`` step by step; return (path, steps).

    Memory does not grow with the steps. A crash or Ctrl-C leaves the steps written so far,
    readable (:func:`parity.trace.memory.load` says "interrupted after k steps").
    """
    PortSpec.parse(port)
    # summary: a torch port's big tensors are summarized where they live, never copied (parity.run.device)
    run = PortRun(case, port, dtype, module=module, source=source, isolate=isolate, summary=summary)
    if run.isolated:
        # A fresh interpreter records the port; its file is this port's trace.
        from parity.run.interpreter import python

        code = "import sys; from parity.cli.main import main; sys.exit(main(sys.argv[1:]))"  # in this interpreter
        cmd = python(code, "record", case.name, "--port", port, "--dtype", dtype, "-o", path, "--in-process")
        cmd += ["--summary"] if summary else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ParityError(f"isolated port {port} failed: {last}", case=case.name)
        from parity.trace.file import TraceReader

        reader = TraceReader(path)
        n = sum(1 for _ in reader.steps())
        return path, n
    from parity.run.isolate import record_here

    return record_here(case, port, dtype, path, module=module, source=source, summary=summary)


def run_case(
    case: Case | str,
    *,
    dtypes: Iterable[str] | None = None,
    ports: Iterable[str] | None = None,
    modules: Mapping[str, ModuleType] | None = None,
    sources: Mapping[str, str] | None = None,
    pairs: str = "auto",
    keep: str = "window",
    window: int | None = None,
    trace_dir: str | None = None,
    summary: bool = False,
    observers: Sequence = (),
    workers: bool = False,
    conditioning: bool = True,
    batches: Iterable[Mapping] | None = None,
) -> CaseResult:
    """Run every port of a case in every dtype in lockstep, comparing each step as it arrives.

    All ports of all dtypes step together: step ``t`` of every port is compared (and the
    envelope measured from the float64 and float32 runs of the same port) before step ``t + 1``
    runs, then dropped; memory does not grow with the steps.

    Args:
        case: a case or its name.
        dtypes: the dtypes (default: the case's).
        ports: the ports (default: the case's).
        modules: port -> module to use instead of the built-in one (a user's port).
        sources: port -> where that module came from.
        pairs: "all" (every pair of ports), "reference" (the first port against each other)
            or "auto" (every pair of the main ports -- tf1, tf2, torch, numpy -- and the first
            port against each variant port, or against every port when it is a variant itself).
        keep: "window" (full tensors around each first divergence; see
            :class:`~parity.trace.memory.Window`) or "all" (every step: short cases and tests).
        window: steps kept in full before and after a first divergence (default 2; 0 with
            ``summary``: a model whose tensors need summaries cannot hold several steps in
            full -- the real-size transformer's 3 float32 steps of 2 ports are 600 MB).
        trace_dir: also write every port's trace there, step by step
            (``<case>.<port>.<dtype>.trace``, written to a hidden temporary file of its own and
            renamed when the run completes; a run that does not complete leaves
            ``<case>.<port>.<dtype>.trace.partial``, a readable prefix).
        summary: compare (and write) tensors of more than 16 elements as summaries
            (:mod:`parity.trace.summary`): for models whose tensors do not fit.
        observers: objects with ``start(case, port, dtype, initial)``, ``step(case, port,
            dtype, stages)`` and ``finish(case, port, dtype)``, given every step as it arrives
            (``--tensorboard`` writes its events so); they must not keep the arrays. One with a
            ``restart()`` lets the run start over (the conditioning run found needed: ``conditioning``),
            called before the new run's first ``start``; with one without it, the run has the
            conditioning run from the start.
        workers: run each framework's built-in ports in a worker process of its own
            (:mod:`parity.run.workers`: ``parity run``'s default), stepping in parallel; a
            user's module and the numpy ports stay in this process. ``parity run`` and ``check``
            pass ``PARITY_WORKERS``' setting (on unless ``0``); the library's default is off.
        conditioning: measure what rounding can do (:mod:`parity.comparison.envelope`; one more run of
            the reference port): with both dtypes, run it again in float64 from weights and
            data perturbed by float32's unit roundoff (the float32 envelope's cap uses how far
            each tensor moved); with float64 alone, run it in float32 too, never compared (the
            float64 envelope uses its float32 drift). The conditioning run runs only where a
            tensor's envelope can depend on it: without it until a float32 tensor-step needs it,
            then the case again from the start with it (docs/tolerance.md).
        batches: the batches to feed (float64 dicts, one per step) instead of drawing the case's
            (``parity diff`` feeds the batches it prepared from the user's program).

    The step loop itself is :class:`parity.run.lockstep.Lockstep`.
    """
    from parity.run.lockstep import Lockstep

    if window is None:
        window = 0 if summary else 2
    if keep not in ("window", "all"):
        raise ParityError(f"keep must be 'window' or 'all', not {keep!r}")
    case = get_case(case) if isinstance(case, str) else case
    ports = list(ports or case.ports)
    dtypes = list(dtypes or case.dtypes)

    def make(lazy: bool) -> Lockstep:
        return Lockstep(case, ports, dtypes, modules=modules or {}, sources=sources or {}, pairs=pairs, keep=keep,
                        window=window, trace_dir=trace_dir, summary=summary, observers=observers,
                        workers=bool(workers), conditioning=conditioning, lazy=lazy)

    def fed():
        return iter_batches(case, "float64") if batches is None else given_batches(case, batches, "float64")

    # The conditioning run only where the envelope can depend on it (a run that finds it needed runs again, from
    # the start, with it): not where a run cannot be taken back (its trace files, an observer without ``restart``)
    # or its batches can be read once only.
    lazy = (conditioning and not trace_dir and all(callable(getattr(o, "restart", None)) for o in observers)
            and (batches is None or isinstance(batches, Sequence)))
    return _complete(make, lazy, fed, observers).finish()


def _complete(make, lazy: bool, fed, observers: Sequence = ()):
    """``make(lazy)``'s :class:`~parity.run.lockstep.Lockstep` run to its end on the batches ``fed()`` gives (closed,
    not finished). A lazy run that finds a tensor whose float32 envelope can depend on the conditioning run
    (:func:`parity.comparison.envelope.needs_conditioning`) is closed and done again with it: the same result as a
    run with it from the start, which every run without such a tensor also has (docs/tolerance.md)."""
    from parity.comparison.envelope import ConditioningNeeded

    run = make(lazy)
    try:
        run.record_isolated()
        run.open_ports()
        run.pair()
        run.open_extra_runs()
        run.run(fed())
    except ConditioningNeeded:
        run.close(complete=False)  # (a lazy run writes no trace file; its observers start again)
    except BaseException:
        run.close(complete=False)  # the trace files written so far are kept as interrupted (.partial)
        raise
    else:
        run.close()
        return run
    # again, with it: the first attempt's windows, comparisons and health freed first (out of the except block, whose
    # traceback held them; a comparator's callbacks are reference cycles)
    del run
    gc.collect()
    for obs in observers:
        obs.restart()
    return _complete(make, False, fed, observers)


def run_pitfall(wrong: Case, right: Case, *, dtypes: Iterable[str], workers: bool = False) -> tuple[CaseResult, CaseResult]:
    """A pitfall's wrong and right cases: what ``run_case(wrong, ...)`` and ``run_case(right, ...)`` return, in one run.

    The two cases differ only in their second port (and its ``pitfall`` option, which a reference port does not
    read): the reference is built and stepped once per dtype, its conditioning run too, and each case keeps its
    own window, health and drift of it (the right case's under its own name), so each result holds the same
    records and verdicts as its own run would (tests/test_speed_pitfall.py). Cases that differ in anything
    else (their dtypes, an isolated port, their data) run one after the other, as ``run_case`` runs them.
    """
    from parity.run.lockstep import Lockstep

    dtypes = list(dtypes)
    wd, rd = [d for d in dtypes if d in wrong.dtypes], [d for d in dtypes if d in right.dtypes]
    if not _pairable(wrong, right) or wd != rd:
        return run_case(wrong, dtypes=wd, workers=workers), run_case(right, dtypes=rd, workers=workers)
    ref, wport, rport = wrong.ports[0], wrong.ports[1], right.ports[1]
    alias = f"{ref}:@right"  # the reference's run, kept a second time for the right case

    def make(lazy: bool) -> Lockstep:
        return Lockstep(wrong, [ref, wport, rport, alias], wd, modules={}, sources={}, pairs=[(ref, wport), (alias, rport)],
                        keep="window", window=2, trace_dir=None, summary=False, observers=(), workers=bool(workers),
                        conditioning=True, cases={rport: right, alias: right}, aliases={alias: ref}, lazy=lazy)

    run = _complete(make, True, lambda: iter_batches(wrong, "float64"))
    both = run.finish()
    kept = [(d, pa, pb) for d, pa, pb, _ in run.comparators if (d, pa) not in run.failed and (d, pb) not in run.failed]
    out = []
    for case, ports in ((wrong, {ref: ref, wport: wport}), (right, {alias: ref, rport: rport})):
        res = CaseResult(case=case)  # each case's ports in its own order, under their own names
        for d in wd:
            for into, got in ((res.traces, both.traces), (res.errors, both.errors)):
                into[d] = {ports[p]: got[d][p] for p in ports if p in got.get(d, {})}
            res.seconds.update({f"{ports[p]}/{d}": both.seconds[f"{p}/{d}"] for p in ports if f"{p}/{d}" in both.seconds})
        res.comparisons = [c for (d, pa, pb), c in zip(kept, both.comparisons) if pa in ports and pb in ports]
        out.append(res)
    return out[0], out[1]


def _pairable(wrong: Case, right: Case) -> bool:
    """Whether ``right`` is ``wrong`` but for its name, title, expectation, tags, second port and ``pitfall`` option."""
    if len(wrong.ports) != 2 or len(right.ports) != 2 or wrong.ports[0] != right.ports[0]:
        return False
    if len({*wrong.ports, *right.ports}) != 3 or wrong.option("isolate", ()) or right.option("isolate", ()):
        return False
    if PortSpec.parse(wrong.ports[0]).variant == "wrong":  # a port that reads `pitfall`
        return False
    options = {k: v for k, v in wrong.options.items() if k != "pitfall"}
    if {k: v for k, v in right.options.items() if k != "pitfall"} != options:
        return False
    same = dataclasses.replace(right, name=wrong.name, title=wrong.title, expect=wrong.expect, tags=wrong.tags,
                               ports=wrong.ports, options=wrong.options, dtypes=wrong.dtypes)
    return same == wrong
