"""The step loop of :func:`parity.run.runner.run_case`: every port of every dtype steps together.

A :class:`Lockstep` is one case's run, an object passed down (no module state): it opens each
port (:meth:`open_ports`), pairs them (:meth:`pair`), opens the envelope's extra runs (the
float32 shadow of a float64-only run, the conditioning run: :mod:`parity.run.live`), then feeds
the same batch to every run (:meth:`run`): step ``t`` of every port is compared, and the envelope
measured from the float64 and float32 runs of the same port, before step ``t + 1`` is kept, then
dropped. :meth:`finish` closes everything and fills the :class:`~parity.run.result.CaseResult`.

Under the ``parity`` command, a port running in this process tells the supervisor which port,
dtype, step and stage (opening, a step) it is in before it runs (:func:`parity.run.interpreter.progress`):
a port that ends the process (``os._exit``) is then named with its step.
"""

from __future__ import annotations

import os
import tempfile
from typing import Iterable, Iterator, Mapping, Sequence

from parity.cases.case import Case, PortSpec
from parity.comparison.comparator import Comparator, Drift, add_together, pairs_of
from parity.comparison.envelope import NOT_YET, needs_conditioning
from parity.errors import ParityError, PortError
from parity.run import isolate
from parity.run.boundary import record_isolated
from parity.run.interpreter import progress, reporting
from parity.run.live import COND, SHADOW, LivePort, conditioning_port, new_run, open_conditioning, open_shadow, summarized
from parity.run.result import CaseResult
from parity.run.remote_runs import RemoteRun, open_all, start_steps

__all__ = ["Lockstep"]


class Lockstep:
    """One case's ports, their comparators and the envelope's extra runs, stepped together.

    Args are those of :func:`~parity.run.runner.run_case` (already checked there), and for
    :func:`~parity.run.runner.run_pitfall` (a pitfall's wrong and right cases in one run): ``pairs`` may be a list
    of (port, port); ``cases``: port -> the case it is built for (default ``case``); ``aliases``: a name ->
    the port whose run it mirrors (the same steps, not run again, with a window, health and drift of its
    own: what a second case running that port would have kept); ``lazy``: the conditioning run is not opened, its
    ``cond`` is :data:`~parity.comparison.envelope.NOT_YET` (a comparison that would need it raises
    :class:`~parity.comparison.envelope.ConditioningNeeded`: the caller runs the case again without ``lazy``).
    """

    def __init__(self, case: Case, ports: Sequence[str], dtypes: Sequence[str], *, modules: Mapping, sources: Mapping,
                 pairs, keep: str, window: int, trace_dir: str | None, summary: bool, observers: Sequence,
                 workers: bool, conditioning: bool, cases: Mapping | None = None, aliases: Mapping | None = None,
                 lazy: bool = False):
        self.case, self.ports, self.dtypes = case, list(ports), list(dtypes)
        self.modules, self.sources = dict(modules), dict(sources)
        self.pairs, self.keep, self.window = pairs, keep, window
        self.trace_dir, self.summary, self.observers = trace_dir, summary, tuple(observers)
        self.workers, self.conditioning, self.lazy = workers, conditioning, lazy
        self.cases, self.aliases = dict(cases or {}), dict(aliases or {})
        self.result = CaseResult(case=case)
        self.live: dict[tuple[str, str], LivePort] = {}
        self.comparators: list[tuple[str, str, str, Comparator]] = []
        self.drifts: dict[str, Drift] = {}
        self.shadow = self.cond_run = None
        self.cond_later = False  # (lazy) the conditioning run would have been opened: cond is NOT_YET until needed
        self._batch = None  # the step last started (float64)
        self.failed: set[tuple[str, str]] = set()
        self.recorded: dict = {}
        self._isolated_dir = None

    # -- opening ------------------------------------------------------------------------------------------
    def record_isolated(self) -> None:
        """Ports the case marks ``isolate`` (their own interpreter) are recorded first, all in one subprocess:
        with workers, TF1 ports in a child forked from an interpreter that imported TensorFlow
        (:func:`parity.run.isolate.record`)."""
        case = self.case
        jobs = [(p, d) for d in self.dtypes for p in self.ports if p not in self.modules and p in case.option("isolate", ())]
        if not jobs:
            return
        self._isolated_dir = tempfile.TemporaryDirectory(prefix="parity-")
        try:
            # forked: the TF1 graph-mode ports (seed 003); the data-parallel TF2 ports configure their devices
            # before TensorFlow initialises, each case in a fresh interpreter
            tf1 = all(PortSpec.parse(p).framework == "tf1" for p, _ in jobs)
            record = isolate.record if self.workers and tf1 else record_isolated
            self.recorded = dict(zip(jobs, record(case, jobs, self._isolated_dir.name)))
        except ParityError as exc:
            for p, d in jobs:
                self.result.errors.setdefault(d, {})[p] = PortError(p, "setup", exc, case=case.name)

    def open_ports(self) -> None:
        """Open every port of every dtype; a port that fails to open is an error of the result, not a raise.
        Each worker builds its ports while the others build theirs (:func:`parity.run.remote_runs.open_all`)."""
        case, result = self.case, self.result
        todo = []
        for dtype in self.dtypes:
            result.errors.setdefault(dtype, {})
            todo += [(port, dtype, new_run(self.cases.get(port, case), port, dtype, self.modules, self.sources,
                                           self.workers, recorded=self.recorded.get((port, dtype))))
                     for port in self.ports if port not in result.errors[dtype] and port not in self.aliases]

        def announce(i):
            progress(f"in the {todo[i][0]} port ({todo[i][1]}), while it was opened (build, load)")

        for (port, dtype, run), exc in zip(todo, open_all([r for _, _, r in todo], announce)):
            if exc is not None:
                run.close()
                result.errors[dtype][port] = exc if isinstance(exc, PortError) else PortError(port, "setup", exc,
                                                                                             case=case.name)
            else:
                self._record(run, port, dtype)
            result.seconds[f"{port}/{dtype}"] = round(run.seconds, 4)
        for alias, port in self.aliases.items():
            for dtype in self.dtypes:
                if (dtype, port) in self.live:
                    self._record(_Alias(self.live[(dtype, port)].run, self.cases.get(alias, case)), alias, dtype)
                elif port in result.errors[dtype]:
                    result.errors[dtype][alias] = result.errors[dtype][port]
        progress()

    def _record(self, run, port: str, dtype: str) -> None:
        """Keep an opened run: its window, health and trace file. A trace file that cannot be written is not
        the port's fault: its error (a full disk: exit 2) goes up, the run closed."""
        from parity.trace.file import TraceWriter

        case = self.case
        try:
            writer = None
            if self.trace_dir:
                path = os.path.join(self.trace_dir, f"{case.name}.{port.replace(':', '-')}.{dtype}.trace")
                writer = TraceWriter(path, run.manifest, summary=self.summary, atomic=True)
            self.live[(dtype, port)] = LivePort(run, self.keep, self.window, writer, summary=self.summary)
        except BaseException:
            run.close()
            raise
        for obs in self.observers:
            obs.start(case.name, port, dtype, run.initial)

    def pair(self) -> None:
        """A comparator per pair of open ports and dtype (``pairs``); drift trackers where both dtypes run."""
        for dtype in self.dtypes:
            names = [p for p in self.ports if (dtype, p) in self.live]
            chosen = (pairs_of(names, self.pairs) if isinstance(self.pairs, str) else
                      [(a, b) for a, b in self.pairs if a in names and b in names])
            for pa, pb in chosen:
                la, lb = self.live[(dtype, pa)], self.live[(dtype, pb)]

                def freeze(k, la=la, lb=lb):
                    la.recorder.keep_around(k)
                    lb.recorder.keep_around(k)

                cmp = Comparator(la.run.manifest, lb.run.manifest, cost=self.case.cost, keep=self.keep, before=self.window,
                                 after=self.window, on_divergence=freeze,
                                 initial=(la.run.initial, lb.run.initial))
                self.comparators.append((dtype, pa, pb, cmp))
        if "float64" in self.dtypes and "float32" in self.dtypes:
            self.drifts = {p: Drift() for _, pa, pb, _ in self.comparators for p in (pa, pb)}

    def open_extra_runs(self) -> None:
        """The envelope's runs: a float64-only run's float32 shadow (never compared), or the conditioning run
        (the float32 reference again in float64, weights and data perturbed by float32's unit roundoff)."""
        if not self.conditioning:
            return
        args = (self.modules, self.sources)
        if self.dtypes == ["float64"]:
            self.shadow = open_shadow(self.case, [p for p in self.ports if ("float64", p) in self.live], *args, self.workers)
            if self.shadow is not None:
                self.drifts = {self.shadow[0]: self.shadow[2]}
        elif "float64" in self.dtypes and "float32" in self.dtypes:
            f32 = [p for p in self.ports if ("float32", p) in self.live]
            if self.lazy:  # opened only where a tensor's envelope can depend on it: the case then runs again
                self.cond_later = conditioning_port(self.case, f32, self.live, self.recorded) is not None
            else:
                self.cond_run = open_conditioning(self.case, f32, self.live, *args, self.recorded, self.workers)

    # -- stepping -----------------------------------------------------------------------------------------
    def _fail(self, key, exc) -> None:
        from parity.run.boundary import parity_fault

        if not isinstance(exc, PortError) and parity_fault(exc):
            raise exc  # parity's capture code crashed under the user's step: a bug in parity (exit 4)
        self.failed.add(key)
        dtype, port = key
        self.result.errors[dtype][port] = exc if isinstance(exc, PortError) else PortError(port, "setup", exc,
                                                                                           case=self.case.name)
        lv = self.live.pop(key)
        lv.run.close()
        lv.finish(complete=False)
        for alias in [a for a, p in self.aliases.items() if p == port and (dtype, a) in self.live]:
            self._fail((dtype, alias), exc)  # its port's failure

    def _start(self, batches: Iterator):
        """The next step starts in the workers (the harness compares this one meanwhile)."""
        batch64 = self._batch = next(batches, None)
        runs = {key: lv.run for key, lv in self.live.items() if key[1] not in self.aliases}
        if self.cond_run is not None:
            runs[COND] = self.cond_run[1]
        if self.shadow is not None:
            runs[SHADOW] = self.shadow[1]
        return None if batch64 is None else self._step(runs, batch64)

    @staticmethod
    def _step(runs: dict, batch64):
        """``runs`` start a step on ``batch64`` (each in-process one announced to the supervisor, where it listens)."""
        if reporting():
            runs = {key: run if isinstance(run, RemoteRun) else _Announced(run, key) for key, run in runs.items()}
        return start_steps(runs, batch64)

    def run(self, batches: Iterable) -> None:
        """Feed every batch (float64; each run casts it to its dtype) to every run, comparing each step."""
        batches = iter(batches)
        pending, first = None, True
        try:
            pending = self._start(batches)
            while pending is not None:
                arrived = pending.finish()
                moved, shadowed = arrived.pop(COND, None), arrived.pop(SHADOW, None)
                if isinstance(shadowed, BaseException):
                    self.shadow[1].close()
                    self.shadow, self.drifts, shadowed = None, {}, None
                if isinstance(moved, BaseException):  # no conditioning then: the envelope as before
                    self.cond_run[1].close()
                    self.cond_run, moved = None, None
                for key, step in arrived.items():
                    if isinstance(step, BaseException):
                        self._fail(key, step)
                steps = {k: s for k, s in arrived.items() if not isinstance(s, BaseException)}
                if first and self.cond_later:  # step 0 taken before step 1 starts: the conditioning run may join now
                    steps, moved, drift = self._take(steps, moved, shadowed)
                    moved = self._join_conditioning(steps, drift, moved)
                    pending = self._start(batches)
                    self._pairs(steps, drift, self._cond(steps, moved))
                else:
                    pending = self._start(batches)
                    self._compare(steps, moved, shadowed)
                arrived = moved = shadowed = steps = None  # this step's tensors: not held while the next one arrives
                first = False
                for lv in self.live.values():
                    lv.recorder.trim()
        finally:
            if pending is not None:  # a step still in the workers (the comparison raised): collect it first
                pending.finish()
            progress()

    def _compare(self, steps: dict, moved, shadowed) -> None:
        """Keep one step of every port, measure the drifts and compare every pair on it."""
        steps, moved, drift = self._take(steps, moved, shadowed)
        self._pairs(steps, drift, self._cond(steps, moved))

    def _join_conditioning(self, steps: dict, drift: dict, moved):
        """At step 0 of a lazy run: where a float32 comparison would need the conditioning run
        (:func:`~parity.comparison.envelope.needs_conditioning`), open it now and step it on batch 0 (its step, or
        None), as a run with it from the start would have; a later step that needs it runs the case again."""
        for dtype, pa, pb, cmp in self.comparators:
            if dtype != "float32" or (dtype, pa) not in steps or (dtype, pb) not in steps:
                continue
            da = drift.get(pa) or {}
            if any(stage != "inputs" and needs_conditioning(cmp.bound("float32", stage, 0, cmp.cost), da.get((stage, name), 0.0), db)
                   for (stage, name), db in (drift.get(pb) or {}).items()):
                break
        else:
            return moved
        f32 = [p for p in self.ports if ("float32", p) in self.live]
        self.cond_later = False
        self.cond_run = open_conditioning(self.case, f32, self.live, self.modules, self.sources, self.recorded, self.workers)
        if self.cond_run is None:
            return None
        run = self.cond_run[1]
        got = self._step({COND: run}, self._batch).finish()[COND]
        if isinstance(got, BaseException):  # no conditioning then: the envelope as before
            run.close()
            self.cond_run = None
            return None
        return summarized(got) if self.summary else got

    def _take(self, steps: dict, moved, shadowed):
        """Keep one step of every port (windows, health, observers) and measure the drifts: ``(steps, moved,
        drift)``, summarized where the run compares summaries."""
        case = self.case
        for alias, port in self.aliases.items():  # the same step: an alias's window, health, drift of its own
            for dtype in self.dtypes:
                if (dtype, port) in steps and (dtype, alias) in self.live:
                    steps[(dtype, alias)] = steps[(dtype, port)]
        for key, step in steps.items():
            self.live[key].add(step)
            for obs in self.observers:
                obs.step(case.name, key[1], key[0], step)
        if self.summary:  # compare statistics only: what a summary trace holds (parity.trace.summary)
            steps = {key: summarized(step) for key, step in steps.items()}
            moved, shadowed = (None if x is None else summarized(x) for x in (moved, shadowed))
        drift = {}
        for port, tracker in self.drifts.items():
            s64, s32 = steps.get(("float64", port)), steps.get(("float32", port), shadowed)
            if s64 is not None and s32 is not None:
                drift[port] = tracker.add(s64, s32)
        return steps, moved, drift

    def _cond(self, steps: dict, moved):
        """How far the conditioning run moved each tensor so far (NOT_YET in a lazy run without it)."""
        cond = NOT_YET if self.cond_later else None
        if self.cond_run is not None and ("float64", self.cond_run[0]) in steps:
            cond = self.cond_run[2].add(steps[("float64", self.cond_run[0])], moved)
        return cond

    def _pairs(self, steps: dict, drift: dict, cond) -> None:
        """Every pair compared on one step."""
        # every pair's stage before the next stage: a port's tensors are read again while cached (issue 21)
        add_together([(cmp, steps[(dtype, pa)], steps[(dtype, pb)], drift.get(pa), drift.get(pb),
                       cond if dtype == "float32" else None)
                      for dtype, pa, pb, cmp in self.comparators if (dtype, pa) in steps and (dtype, pb) in steps])

    # -- closing ------------------------------------------------------------------------------------------
    def close(self, complete: bool = True) -> None:
        """Close every run (ports, extra runs), tell the observers, drop the isolated recordings.
        ``complete=False`` (the run raised): the trace files are closed as interrupted too."""
        for lv in self.live.values():
            lv.run.close()
            if not complete and lv.writer is not None:
                lv.writer.close(complete=False)
        for extra in (self.cond_run, self.shadow):
            if extra is not None:
                extra[1].close()
        for dtype in self.dtypes:
            for port in self.ports:
                for obs in self.observers:
                    obs.finish(self.case.name, port, dtype)
        if self._isolated_dir is not None:
            self._isolated_dir.cleanup()

    def finish(self) -> CaseResult:
        """The result: every port's window (its trace file completed) and every comparison of ports that ran to the end."""
        result = self.result
        for dtype in self.dtypes:
            result.traces[dtype] = {}
            for port in self.ports:
                lv = self.live.get((dtype, port))
                if lv is not None:
                    result.traces[dtype][port] = lv.finish(complete=True)
                    result.seconds[f"{port}/{dtype}"] = round(lv.run.seconds, 4)
        for dtype, pa, pb, cmp in self.comparators:
            if (dtype, pa) in self.failed or (dtype, pb) in self.failed:
                continue
            result.comparisons.append(cmp.finish())
        return result


class _Alias:
    """A port's run seen a second time (``Lockstep``'s ``aliases``): its manifest (for ``case``), initial
    parameters and time; never opened, stepped or closed (its port's run is)."""

    def __init__(self, run, case: Case):
        self.run, self.dtype = run, run.dtype
        self.manifest = dict(run.manifest, case=case.name) if "case" in run.manifest else dict(run.manifest)
        self.initial = run.initial

    @property
    def seconds(self) -> float:
        return self.run.seconds

    def close(self) -> None:
        pass


class _Announced:
    """An in-process run (``key``: (dtype, port)) that tells the supervisor its port and step before each step."""

    def __init__(self, run, key):
        self._run = run
        dtype, port = key
        self._where = f"in the {port} port ({dtype})" if port else f"in the {dtype} run of the envelope"

    def __getattr__(self, name):
        return getattr(self._run, name)

    def step(self, batch):
        progress(f"{self._where}, during step {self._run.steps}")
        return self._run.step(batch)
