"""Ports in worker processes: one interpreter per framework, stepping side by side.

``parity run`` runs each framework's ports in a worker process of its own (``tf1``, ``tf2``,
``torch``, ``numpy``; a user's port modules stay in this process). The harness process
imports no framework: it draws the data, sends each step's batch to the workers, and
compares the steps they send back. Why:

* **memory**: TensorFlow, tf_keras and torch imported in one interpreter are ~1 GB before a
  model is built, and every port of every dtype keeps its model, optimizer state and graph
  there. Split, no process holds more than one framework and its own ports.
* **time**: the workers step in parallel (one step of every port at a time, the lockstep of
  :func:`parity.run.runner.run_case` is kept) while the harness compares the previous step.

A worker lives for the whole run (TensorFlow's forked from :mod:`parity.run.zygote`) and stops
with the process (:func:`shutdown`, registered with :mod:`atexit`); if the harness dies (even
SIGKILL), its workers die at once (:func:`parity.run.interpreter.die_with_parent`). Ctrl-C ends a
worker quietly (SIGINT's default action: no traceback); the harness reports the interruption.
``PARITY_WORKERS=0`` runs every port in this process, as :func:`parity.run.runner.run_case` does by default.
``parity diff`` runs its two programs' ports here too: a higher layer registers the messages its
workers serve (:data:`HANDLERS`, :data:`MODULES`) and which worker builds a port (:data:`PROGRAMS`).

Messages are pickled over a pipe between two processes of this same program (:mod:`parity.run.wire`;
nothing is read from a file). A port's exception reaches the harness as the same :class:`~parity.errors.PortError`
(its file and line kept); a worker that dies (killed, out of memory, a crash in a framework's C++)
fails the ports it ran with a :class:`PortError` that says so, and the next case starts a new one.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading
from typing import Mapping

import numpy as np

from parity.cases.case import Case, PortSpec
from parity.errors import ParityError, PortError
from parity.run import zygote  # (first: its atexit stop runs after this module's shutdown of the workers)
from parity.run.conn import DirectConnection  # (a large array read straight into its buffer)
from parity.run.noise import relay
from parity.run.interpreter import ROOT, python  # ROOT: the directory holding this same parity
from parity.run.wire import pack as _pack, plain as _plain, recv as _recv, send as _send

__all__ = ["ENV", "enabled", "RemoteRun", "open_all", "start_steps", "step_all", "shutdown", "GROUPS"]

#: Set to "0" to run every port in the harness process (``parity run``'s default is workers).
ENV = "PARITY_WORKERS"
#: framework -> the worker its ports run in (the numpy oracle too: its float64 MLP step is as
#: slow as a framework's, and the harness compares while it runs).
GROUPS = {"tf1": "tf1", "tf2": "tf2", "torch": "torch", "numpy": "numpy"}


def enabled() -> bool:
    """Whether ``parity run`` should use workers (``PARITY_WORKERS`` unset or not "0")."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "", "no", "false")


#: Worker side: message -> ``(ok, payload)`` for the ops a higher layer serves (``parity diff``'s programs:
#: :mod:`parity.program.remote_worker`, imported by the worker's ``boot`` code, registers them here).
HANDLERS: dict = {}
#: Worker side: kind -> ``payload -> (port module, source)``: an ``open`` naming a module built in the worker.
MODULES: dict = {}
#: Harness side: (case name, port) -> (``(dtype, perturb) -> worker``, (kind, payload)): the port runs in
#: that worker, its module built there from the payload (:func:`parity.program.remote.register`).
PROGRAMS: dict = {}


def _serve(conn) -> None:
    """A worker's loop: open, step and close :class:`~parity.run.boundary.PortRun` objects by key."""
    from parity.run.boundary import PortRun
    from parity.cases.params import as_dtype

    runs: dict[int, PortRun] = {}
    while True:
        try:
            msg = _recv(conn)
        except (EOFError, OSError):
            return
        op = msg[0]
        if op == "stop":
            for run in runs.values():
                run.close()
            return
        if op in HANDLERS:
            reply = HANDLERS[op](msg)
            _send(conn, reply)
            del reply
            continue
        if op == "step":  # ("step", [(key, dtype)], batch64): one reply per key, in order
            _, keys, batch64 = msg
            batches: dict[str, dict] = {}
            for key, dtype in keys:  # each step is sent as soon as it is run, then dropped here
                batch = batches.setdefault(dtype, as_dtype(batch64, dtype))
                try:
                    reply = (key, True, runs[key].step(batch), runs[key].seconds)
                except BaseException as exc:  # noqa: BLE001 -- every failure goes back to the harness
                    reply = (key, False, _pack(exc), runs[key].seconds)
                _send(conn, reply)
                del reply
            continue
        key = msg[1]
        try:
            if op == "open":
                _, _, case, port, dtype, perturb, built = msg
                module, source = MODULES[built[0]](built[1]) if built is not None else (None, None)
                run = runs[key] = PortRun(case, port, dtype, perturb=perturb, module=module, source=source,
                                                copy=False)  # its steps are pickled to the harness at once
                try:
                    run.open()
                finally:
                    seconds = run.seconds
                _send(conn, (True, (_plain(run.manifest), run.initial, seconds)))
            elif op == "close":
                run = runs.pop(key, None)
                if run is not None:
                    run.close()
                _send(conn, (True, None))
        except BaseException as exc:  # noqa: BLE001
            _send(conn, (False, _pack(exc)))


class _Worker:
    """One worker process (a fresh interpreter: ``python -c``) and its end of a socket pair."""

    def __init__(self, group: str, boot: str = ""):
        mine, theirs = socket.socketpair()  # not multiprocessing's spawn: it re-runs the caller's main script
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
                   _PARITY_WORKER_NAME=group)  # (internal: names its profile, PARITY_PROFILE_WORKERS)
        # boot: statements run first (a higher layer registering its HANDLERS / MODULES)
        code = f"{boot + '; ' if boot else ''}from parity.run.workers import _main; _main({theirs.fileno()})"
        # Ctrl-C reaches the whole process group: a worker then ends at once, quietly (the harness
        # reports the interruption); it dies with the harness too (parity.run.interpreter).
        quiet = "import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)"
        proc = (None if boot else zygote.forked(group, theirs, env)) or subprocess.Popen(  # TF's: forked
            python(code, early=quiet), pass_fds=[theirs.fileno()], env=env, stderr=subprocess.PIPE)
        theirs.close()
        threading.Thread(target=relay, args=(proc.stderr,), daemon=True).start()
        self.group, self.proc, self.conn, self._keys = group, proc, DirectConnection(mine.detach()), 0

    @classmethod
    def attach(cls, group: str, proc, conn) -> "_Worker":
        """A worker whose process someone else started (``proc``: a ``Popen``'s poll/wait/kill/returncode)."""
        self = cls.__new__(cls)
        self.group, self.proc, self.conn, self._keys = group, proc, conn, 0
        return self

    def new_key(self) -> int:
        self._keys += 1
        return self._keys

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def call(self, *msg):
        self.send(msg)
        return self.recv()

    def send(self, msg) -> None:
        _send(self.conn, msg)

    def recv(self):
        try:
            return _recv(self.conn)
        except (EOFError, OSError):
            self.stop()
            rc = self.proc.returncode
            how = ("died (killed, out of memory, or a port called os._exit)" if rc is None else  # forked: not ours
                   f"was killed by {signal.Signals(-rc).name}" if rc is not None and rc < 0 else
                   f"died (exit code {rc}{': did a port call os._exit?' if rc == 0 else ''})")
            raise _Died(f"the {self.group} worker process {how}") from None

    def stop(self) -> None:
        try:
            if self.alive:
                self.send(("stop",))
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.alive:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.conn.close()

    def kill(self) -> None:
        """End the worker now (its replies are out of step with this harness: an interrupted step)."""
        if self.alive:
            self.proc.kill()
        self.proc.wait()
        self.conn.close()


def _main(fd: int) -> None:
    """A worker's entry point (``python -c``): serve the harness on the socket ``fd``."""
    from parity.errors import warnings_at_users_lines

    try:
        with warnings_at_users_lines():  # a library warning under the user's code: at the user's line, as in-process
            _serve(DirectConnection(fd))
    except (EOFError, OSError):  # the harness is gone: no one to answer
        pass


class _Died(Exception):
    pass


_WORKERS: dict[str, _Worker] = {}


def _worker(group: str) -> _Worker:
    w = _WORKERS.get(group)
    if w is None or not w.alive:
        w = _WORKERS[group] = _Worker(group)
    return w


def shutdown() -> None:
    """Stop every worker (at exit; tests call it to start fresh)."""
    while _WORKERS:
        _WORKERS.popitem()[1].stop()


atexit.register(shutdown)


def group_of(port: str) -> str | None:
    """The worker a port runs in, or None (this process)."""
    return GROUPS.get(PortSpec.parse(port).framework)


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


def _raise(packed) -> BaseException:
    fn, args = packed
    return fn(*args)


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
