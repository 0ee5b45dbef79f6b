"""The harness's side of the runs in workers: a port run in a worker (:class:`RemoteRun`), every run opened at
once (:func:`open_all`) and a step of every run sent to the workers and collected later (:func:`start_steps`), so
the harness compares step ``t`` while the workers run ``t + 1``. The worker processes: :mod:`parity.run.workers`."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from parity.cases.case import Case
from parity.errors import ParityError, PortError
from parity.run.workers import PROGRAMS, _Died, _Worker, _raise, _worker, group_of

__all__ = ["RemoteRun", "open_all", "Pending", "start_steps", "step_all"]


class RemoteRun:
    """:class:`~parity.run.boundary.PortRun`'s interface (open, step, close), run in a worker."""

    def __init__(self, case: Case, port: str, dtype: str, *, perturb: int | None = None):
        self.case, self.port, self.dtype, self.perturb = case, port, dtype, perturb
        self.group = group_of(port)
        # a port whose module is built in a worker of its own (a program of `parity diff`)
        self._program = PROGRAMS.get((case.name, port))
        if self.group is None and self._program is None:
            raise ParityError(f"port {port} has no worker process")
        self.manifest: dict = {}
        self.initial: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.steps = 0
        self._worker: _Worker | None = None
        self._key = 0

    def open(self) -> None:
        self.send_open()
        self.finish_open()

    def send_open(self) -> None:
        """Ask the worker to build the port (it starts at once); :meth:`finish_open` takes its reply."""
        self._worker = _worker(self.group) if self._program is None else self._program[0](self.dtype, self.perturb)
        self._key = self._worker.new_key()
        built = None if self._program is None else self._program[1]
        self._worker.send(("open", self._key, self.case, self.port, self.dtype, self.perturb, built))

    def finish_open(self) -> None:
        try:
            ok, payload = self._worker.recv()
        except _Died as exc:
            raise PortError(self.port, "build", str(exc), case=self.case.name) from None
        if not ok:
            raise _raise(payload)
        self.manifest, self.initial, self.seconds = payload

    def step(self, batch64: Mapping[str, np.ndarray]) -> dict:
        out = step_all({0: self}, batch64)[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self) -> None:
        w, self._worker = self._worker, None
        if w is not None and w.alive:
            try:
                w.call("close", self._key)
            except _Died:
                pass


def open_all(runs, before=None) -> list:
    """Open ``runs`` (:class:`RemoteRun` or in-process runs), every worker building its own while the others build
    theirs; return, per run, None or the :class:`~parity.errors.ParityError` its ``open`` raised (a
    :class:`~parity.errors.PortError` is one). ``before(i)`` is called before in-process run ``i`` opens. Any other
    exception is raised once every reply is in, the runs that did open closed first."""
    out: list = [None] * len(runs)
    sent = []
    for i, run in enumerate(runs):
        if isinstance(run, RemoteRun):
            try:
                run.send_open()
                sent.append(i)
            except BaseException as exc:  # noqa: BLE001 -- (raised below, once the others' replies are read)
                out[i] = exc
    for i in [i for i, run in enumerate(runs) if not isinstance(run, RemoteRun)] + sent:  # in-process ones meanwhile
        try:
            if i not in sent and before is not None:
                before(i)
            runs[i].finish_open() if i in sent else runs[i].open()
        except BaseException as exc:  # noqa: BLE001 -- every reply is read first: the workers stay in step
            out[i] = exc
    bad = next((exc for exc in out if exc is not None and not isinstance(exc, ParityError)), None)
    if bad is not None:
        for run, exc in zip(runs, out):
            if exc is None:
                run.close()
        raise bad
    return out



class Pending:
    """A step sent to the workers (:func:`start_steps`) and not yet collected (:meth:`finish`)."""

    def __init__(self, runs: Mapping, batch64: Mapping[str, np.ndarray]):
        self.runs, self.batch64 = dict(runs), batch64
        self.sent: dict[_Worker, list] = {}
        self.out: dict = {}
        for key, run in self.runs.items():
            if isinstance(run, RemoteRun) and run._worker is not None:
                self.sent.setdefault(run._worker, []).append(key)
        for w, keys in list(self.sent.items()):
            try:
                w.send(("step", [(self.runs[k]._key, self.runs[k].dtype) for k in keys], batch64))
            except (OSError, ValueError):
                del self.sent[w]
                for k in keys:
                    self.out[k] = _gone(self.runs[k], f"the {w.group} worker process is gone")

    def finish(self) -> dict:
        """Run the in-process steps, collect the workers'; return key -> step or exception.

        Once: if it is interrupted (Ctrl-C, or any error of the harness), the step is abandoned: the
        workers still owing replies are stopped (the next run starts new ones), and a second call
        (the step loop's ``finally``) returns nothing instead of running the in-process steps again.
        """
        if self.runs is None:
            return {}
        try:
            return self._collect()
        except BaseException:
            for w in self.sent or ():
                w.kill()
            self.runs = self.sent = self.out = None
            raise

    def _collect(self) -> dict:
        from parity.cases.params import as_dtype

        runs, out = self.runs, self.out
        for key, run in runs.items():
            if not isinstance(run, RemoteRun):
                try:
                    out[key] = run.step(as_dtype(self.batch64, run.dtype))
                except ParityError as exc:
                    out[key] = exc
        for w, keys in self.sent.items():
            for i, k in enumerate(keys):
                try:
                    _, ok, payload, seconds = w.recv()
                except _Died as exc:
                    for k2 in keys[i:]:
                        out[k2] = _gone(runs[k2], str(exc))
                    break
                runs[k].seconds = seconds
                runs[k].steps += 1
                out[k] = payload if ok else _raise(payload)
        self.runs = self.sent = self.out = None
        return {k: out[k] for k in runs}


def _gone(run: RemoteRun, why: str) -> PortError:
    return PortError(run.port, f"step {run.steps}", why, case=run.case.name)


def start_steps(runs: Mapping, batch64: Mapping[str, np.ndarray]) -> Pending:
    """Send the next step to every worker run (they start at once); :meth:`Pending.finish` collects.

    ``runs``: key -> :class:`RemoteRun` or an in-process run (``step(batch)`` in its own dtype).
    The batch is sent once per worker (float64: the worker casts it per dtype, as
    :func:`parity.cases.params.as_dtype` does here); in-process runs step in :meth:`Pending.finish`,
    while the workers work. The harness compares step ``t`` while the workers run ``t + 1``.
    """
    return Pending(runs, batch64)


def step_all(runs: Mapping, batch64: Mapping[str, np.ndarray]) -> dict:
    """Run the next step of every run, the workers' in parallel; return key -> step or exception."""
    return start_steps(runs, batch64).finish()
