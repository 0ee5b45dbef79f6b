"""Cases in parallel: ``parity run`` shares its cases among harness processes ("jobs").

One harness compares a step while its framework workers compute the next (:mod:`parity.run.workers`);
on a machine of two cores that still leaves a core idle much of the time: while the workers open a
case's ports (graph builds), while a case's comparisons are slower than its ports' steps, while
seed 003's isolated ports record. ``parity run`` with more than one job starts that many job
processes, each a harness with its own framework workers, and hands them the cases (and the pitfall
catalogue's pitfalls) one at a time, the next to the first job free. Each job runs a case exactly as
the serial run does (:func:`parity.run.runner.run_case`, then the settings check and the diagnoses
while the case's windows hold their tensors, then :meth:`~parity.run.result.CaseResult.release`) and
sends back the released result; this process puts the results back in the order of the cases, so
the report, the JSON and the exit code are those of the serial run.

Measured on the 2-core machine, ``parity run --all`` (docs/performance.md, "make parity"). The price:
each job imports the frameworks in workers of its own (about 15 s of CPU for TensorFlow twice and
torch), and memory is that of one harness and its workers per job. So a run of few cases stays
serial (:func:`jobs_for`); ``--jobs`` and ``PARITY_JOBS`` choose.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from multiprocessing.connection import wait
from typing import Callable, Iterable, Iterator

from parity.errors import ParityError

__all__ = ["ENV", "MIN_UNITS", "jobs_for", "jobs_argument", "Jobs", "JobError", "case_units"]

#: The number of job processes (``parity run --jobs`` wins); "1" runs every case in this process.
ENV = "PARITY_JOBS"
#: Below this many cases (pitfalls counted) one harness is used: a job's framework imports cost
#: more than two small cases in parallel gain.
MIN_UNITS = 6
#: The most jobs chosen without being asked: each is a harness and up to four framework workers
#: (measured peak of one set: 1.25 GB in its largest process, ~3 GB together).
AUTO_MAX = 2


def jobs_argument(text: str) -> int:
    """``--jobs N``: a whole number, at least 1."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n} is not at least 1 (1 runs the cases in this process)")
    return n


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def jobs_for(units: int, asked: int | None) -> int:
    """How many jobs a run of ``units`` cases and pitfalls uses.

    ``asked``: ``--jobs`` (None: ``PARITY_JOBS``, else automatic: one per core up to :data:`AUTO_MAX`,
    one when fewer than :data:`MIN_UNITS`). Never more jobs than units.
    """
    if asked is None:
        raw = os.environ.get(ENV, "").strip()
        if raw:
            try:
                asked = int(raw)
            except ValueError:
                raise ParityError(f"{ENV}={raw!r}: give a whole number of jobs (1 runs the cases in this process)") from None
            if asked < 1:
                raise ParityError(f"{ENV}={raw!r}: give at least 1 job (1 runs the cases in this process)")
    if asked is None:
        asked = 1 if units < MIN_UNITS else min(AUTO_MAX, _cores())
    return max(1, min(asked, units))


# -- the job's side ------------------------------------------------------------------------------------

def _case(msg) -> tuple:
    """``("job_case", case name, ports, options)``: run it as the serial run does; reply the released result."""
    from parity.cases.registry import get_case
    from parity.cli.report import Findings
    from parity.run.runner import run_case
    _, name, ports, options = msg
    try:
        case = get_case(name)
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # a port's own prints never go into the report
            result = run_case(case, ports=ports, workers=True, **options)
        seconds = time.perf_counter() - t0
        findings = Findings()
        findings.examine(result)
        result.release()
        return True, (result, findings, seconds)
    except BaseException as exc:  # noqa: BLE001 -- the run's own error, raised again in the parent
        return False, _packed(exc)


def _pitfall(msg) -> tuple:
    """``("job_pitfall", name, dtypes)``: one pitfall of the catalogue; reply its rows and seconds."""
    from parity.tools import pitfall_check

    _, name, dtypes = msg
    try:
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            rows = pitfall_check.run_catalogue(dtypes=dtypes, names=[name], workers=True)
        return True, (rows, time.perf_counter() - t0)
    except BaseException as exc:  # noqa: BLE001
        return False, _packed(exc)


class JobError(Exception):
    """An error of parity's own in a job process (not a :class:`~parity.errors.ParityError`): its type, first
    line and place, then the job's traceback (``--traceback`` shows it whole)."""


def _packed(exc: BaseException):
    """What goes back for a unit that raised: parity's errors whole (the same exit code as in one process),
    anything else as a :class:`JobError` (exit 4: parity's bug)."""
    import traceback

    from parity.run.wire import pack

    if isinstance(exc, ParityError):
        return pack(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    at = f" at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno}" if tb else ""
    line = (str(exc).strip().splitlines() or [""])[0]
    text = "".join(traceback.format_exception(exc)).strip()
    return (JobError, (f"{type(exc).__name__}: {line}{at} (in a job process)\n{text}",))


def _register() -> None:
    from parity.run.workers import HANDLERS

    HANDLERS["job_case"] = _case
    HANDLERS["job_pitfall"] = _pitfall


_BOOT = "from parity.cli.jobs import _register; _register()"


# -- this process's side -------------------------------------------------------------------------------

class Jobs:
    """``n`` job processes, started on first use and stopped by :meth:`close` (a context manager)."""

    def __init__(self, n: int):
        self.n = n
        self._procs: list = []

    def __enter__(self) -> "Jobs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the jobs side by side (each stops its own workers)."""
        from parity.run.workers import stop_all

        procs, self._procs = self._procs, []
        stop_all(procs)

    def _kill(self) -> None:
        while self._procs:
            self._procs.pop().kill()

    def map(self, units: list[tuple], done: Callable[[int, object], None] | None = None) -> Iterator[tuple[int, object]]:
        """Run each unit (a message: ``("job_case", ...)`` or ``("job_pitfall", ...)``) in the first job free;
        yield ``(index, reply payload)`` as each ends. A unit that raised raises here (the other jobs are
        stopped: their replies would be out of step)."""
        from parity.run.workers import _Died, _Worker, _raise

        pending = list(enumerate(units))[::-1]
        busy: dict = {}  # worker -> (index, unit)
        try:
            while pending or busy:
                while pending and len(busy) < self.n:
                    idle = [w for w in self._procs if w not in busy]
                    if not idle:
                        w = _Worker(f"job{len(self._procs) + 1}", boot=_BOOT)
                        self._procs.append(w)
                        idle = [w]
                    i, unit = pending.pop()
                    idle[0].send(unit)
                    busy[idle[0]] = (i, unit)
                ready = wait([w.conn for w in busy])
                for w in [w for w in list(busy) if w.conn in ready]:
                    i, unit = busy.pop(w)
                    try:
                        ok, payload = w.recv()
                    except _Died as exc:
                        self._procs.remove(w)
                        raise JobError(f"{exc} while it ran {unit[0].removeprefix('job_')} {unit[1]}: "
                                       f"out of memory? (PARITY_JOBS=1 runs the cases in one process)") from None
                    if not ok:
                        raise _raise(payload)
                    yield i, payload
        except BaseException:
            self._kill()
            raise


def case_units(planned: Iterable[tuple], options: dict) -> list[tuple]:
    """The messages of ``planned`` ((case, ports) pairs; a case without ports is not sent)."""
    return [("job_case", case.name, list(ports), options) for case, ports in planned if ports]
