"""Run ports of a case from the same weights and data, step by step side by side, and compare them.

:func:`run_case` runs every port of every dtype in lockstep and compares each step as it
arrives (:class:`~parity.compare.comparator.Comparator`), keeping a :class:`~parity.trace.memory.Window` per
port: memory does not grow with the steps. :func:`run_port` returns one port's whole trace
(tests, short runs); :func:`record_port` writes one to a file step by step. The port
boundary (type checks, copies, detaching) is :mod:`parity.run.boundary`.

Computation only: :mod:`parity.report.text` formats what this returns.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable, Mapping, Sequence

import numpy as np

from parity.run.boundary import PORT_FUNCTIONS, PortRun, load_port_module, load_user_port, record_isolated
from parity.cases.case import Case, PortSpec
from parity.cases.registry import get_case
from parity.run.result import CaseResult
from parity.compare.comparator import Comparator, Comparison, Drift, pairs_of
from parity.cases.data import iter_batches
from parity.errors import ParityError, PortError
from parity.trace.memory import Trace, Window
from parity.compare.files import compare_files
from parity.run.live import COND, SHADOW, LivePort, new_run, open_conditioning, open_shadow, summarized
from parity.run.workers import start_steps
from parity.run.workers import default as workers_default

__all__ = [
    "load_port_module",
    "load_user_port",
    "run_port",
    "record_port",
    "run_case",
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
    from parity.trace.file import TraceWriter

    PortSpec.parse(port)
    run = PortRun(case, port, dtype, module=module, source=source, isolate=isolate)
    if run.isolated:
        # A fresh interpreter records the port; its file is this port's trace.
        cmd = [sys.executable, "-m", "parity", "record", case.name, "--port", port, "--dtype", dtype, "-o", path, "--in-process"]
        cmd += ["--summary"] if summary else []
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ParityError(f"isolated port {port} failed: {last}", case=case.name)
        from parity.trace.file import TraceReader

        reader = TraceReader(path)
        n = sum(1 for _ in reader.steps())
        return path, n
    try:
        run.open()
        with TraceWriter(path, run.manifest, summary=summary) as writer:
            writer.initial(run.initial)
            for batch in iter_batches(case, dtype):
                writer.step(run.step(batch))
        return writer.path, writer.steps
    finally:
        run.close()


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
    workers: bool | None = None,
    conditioning: bool = True,
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
            (``<case>.<port>.<dtype>.trace``; ``.trace.partial`` until the run completes, and
            left so, a readable prefix, when it does not).
        summary: compare (and write) tensors of more than 16 elements as summaries
            (:mod:`parity.trace.summary`): for models whose tensors do not fit.
        observers: objects with ``start(case, port, dtype, initial)``, ``step(case, port,
            dtype, stages)`` and ``finish(case, port, dtype)``, given every step as it arrives
            (``--tensorboard`` writes its events so); they must not keep the arrays.
        workers: run each framework's built-in ports in a worker process of its own
            (:mod:`parity.run.workers`: ``parity run``'s default), stepping in parallel; a
            user's module and the numpy ports stay in this process. None: as
            :func:`parity.run.workers.set_default` set it (False unless the command line did).
        conditioning: measure what rounding can do (:mod:`parity.compare.envelope`; one more run of
            the reference port): with both dtypes, run it again in float64 from weights and
            data perturbed by float32's unit roundoff (the float32 envelope's cap uses how far
            each tensor moved); with float64 alone, run it in float32 too, never compared (the
            float64 envelope uses its float32 drift).
    """
    from parity.trace.file import TraceWriter

    if window is None:
        window = 0 if summary else 2
    if workers is None:
        workers = workers_default()
    if keep not in ("window", "all"):
        raise ParityError(f"keep must be 'window' or 'all', not {keep!r}")
    case = get_case(case) if isinstance(case, str) else case
    ports = list(ports or case.ports)
    dtypes = list(dtypes or case.dtypes)
    modules, sources = dict(modules or {}), dict(sources or {})
    result = CaseResult(case=case)
    live: dict[tuple[str, str], LivePort] = {}
    # Isolated ports (their own interpreter) are recorded first, all in one subprocess.
    jobs = [(p, d) for d in dtypes for p in ports if p not in modules and p in case.option("isolate", ())]
    isolated_dir = tempfile.TemporaryDirectory(prefix="parity-") if jobs else None
    recorded = {}
    if jobs:
        try:
            recorded = dict(zip(jobs, record_isolated(case, jobs, isolated_dir.name)))
        except ParityError as exc:
            for p, d in jobs:
                result.errors.setdefault(d, {})[p] = PortError(p, "setup", exc, case=case.name)
    for dtype in dtypes:
        result.errors.setdefault(dtype, {})
        for port in ports:
            if port in result.errors[dtype]:
                continue
            run = new_run(case, port, dtype, modules, sources, workers, recorded=recorded.get((port, dtype)))
            try:
                run.open()
                writer = None
                if trace_dir:
                    path = os.path.join(trace_dir, f"{case.name}.{port.replace(':', '-')}.{dtype}.trace")
                    writer = TraceWriter(path, run.manifest, summary=summary, atomic=True)
                live[(dtype, port)] = LivePort(run, keep, window, writer)
                for obs in observers:
                    obs.start(case.name, port, dtype, run.initial)
            except PortError as exc:
                run.close()
                result.errors[dtype][port] = exc
            except ParityError as exc:  # the port broke the protocol or does not exist
                run.close()
                result.errors[dtype][port] = PortError(port, "setup", exc, case=case.name)
            result.seconds[f"{port}/{dtype}"] = round(run.seconds, 4)

    comparators: list[tuple[str, str, str, Comparator]] = []
    for dtype in dtypes:
        names = [p for p in ports if (dtype, p) in live]
        for pa, pb in pairs_of(names, pairs):
            la, lb = live[(dtype, pa)], live[(dtype, pb)]

            def freeze(k, la=la, lb=lb):
                la.recorder.keep_around(k)
                lb.recorder.keep_around(k)

            cmp = Comparator(la.run.manifest, lb.run.manifest, cost=case.cost, keep=keep, before=window, after=window,
                             on_divergence=freeze)
            comparators.append((dtype, pa, pb, cmp))
    envelope = "float64" in dtypes and "float32" in dtypes
    drifts = {p: Drift() for dtype, pa, pb, _ in comparators for p in (pa, pb) if envelope}
    # float64 alone: the reference's float32 shadow (run, never compared) measures its drift
    shadow = open_shadow(case, [p for p in ports if ("float64", p) in live], modules, sources, workers) \
        if conditioning and dtypes == ["float64"] else None
    if shadow is not None:
        drifts = {shadow[0]: shadow[2]}
    # The conditioning run: the float32 reference again in float64, its weights and data perturbed
    # by float32's unit roundoff; how far each tensor moves is what float32 rounding can do to it.
    cond_run = open_conditioning(case, [p for p in ports if ("float32", p) in live], live, modules, sources, recorded,
                                 workers) if envelope and conditioning else None
    failed: set[tuple[str, str]] = set()

    def fail(key, exc):
        failed.add(key)
        dtype, port = key
        result.errors[dtype][port] = exc if isinstance(exc, PortError) else PortError(port, "setup", exc, case=case.name)
        lv = live.pop(key)
        lv.run.close()
        lv.finish(complete=False)

    batches = iter_batches(case, "float64")
    pending = None

    def start():  # the next step starts in the workers (the harness compares this one meanwhile)
        batch64 = next(batches, None)
        runs = {key: lv.run for key, lv in live.items()}
        if cond_run is not None:
            runs[COND] = cond_run[1]
        if shadow is not None:
            runs[SHADOW] = shadow[1]
        return None if batch64 is None else start_steps(runs, batch64)

    try:
        pending = start()
        while pending is not None:
            arrived = pending.finish()
            moved, shadowed = arrived.pop(COND, None), arrived.pop(SHADOW, None)
            if isinstance(shadowed, BaseException):
                shadow[1].close()
                shadow, drifts = None, {}
            if isinstance(moved, BaseException):  # no conditioning then: the envelope as before
                cond_run[1].close()
                cond_run = None
            for key, step in arrived.items():
                if isinstance(step, BaseException):
                    fail(key, step)
            pending = start()
            steps = {}
            for key, step in arrived.items():
                if isinstance(step, BaseException):
                    continue
                live[key].add(step)
                steps[key] = step
                for obs in observers:
                    obs.step(case.name, key[1], key[0], step)
            if summary:  # compare statistics only: what a summary trace holds (parity.trace.summary)
                steps = {key: summarized(step) for key, step in steps.items()}
                moved, shadowed = (None if x is None else summarized(x) for x in (moved, shadowed))
            drift, cond = {}, None
            if cond_run is not None and ("float64", cond_run[0]) in steps:
                cond = cond_run[2].add(steps[("float64", cond_run[0])], moved)
            moved = None
            for port, tracker in drifts.items():
                s64, s32 = steps.get(("float64", port)), steps.get(("float32", port), shadowed)
                if s64 is not None and s32 is not None:
                    drift[port] = tracker.add(s64, s32)
            shadowed = None
            for dtype, pa, pb, cmp in comparators:
                if (dtype, pa) in steps and (dtype, pb) in steps:
                    cmp.add(steps[(dtype, pa)], steps[(dtype, pb)], drift.get(pa), drift.get(pb), cond if dtype == "float32" else None)
            del steps
            arrived = step = s64 = s32 = None  # this step's tensors: not held while the next one arrives
            for lv in live.values():
                lv.recorder.trim()
    finally:
        if pending is not None:  # a step still in the workers (the comparison raised): collect it first
            pending.finish()
        for key, lv in list(live.items()):
            lv.run.close()
        for extra in (cond_run, shadow):
            if extra is not None:
                extra[1].close()
        for dtype in dtypes:
            for port in ports:
                for obs in observers:
                    obs.finish(case.name, port, dtype)
        if isolated_dir is not None:
            isolated_dir.cleanup()
    for dtype in dtypes:
        result.traces[dtype] = {}
        for port in ports:
            lv = live.get((dtype, port))
            if lv is not None:
                result.traces[dtype][port] = lv.finish(complete=True)
                result.seconds[f"{port}/{dtype}"] = round(lv.run.seconds, 4)
    for dtype, pa, pb, cmp in comparators:
        if (dtype, pa) in failed or (dtype, pb) in failed:
            continue
        result.comparisons.append(cmp.finish())
    return result
