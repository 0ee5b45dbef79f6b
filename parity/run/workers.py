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
The harness's side of the runs (a port run in a worker, opened and stepped together): :mod:`parity.run.remote_runs`.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import threading

from parity.cases.case import PortSpec
from parity.run import zygote  # (first: its atexit stop runs after this module's shutdown of the workers)
from parity.run.conn import DirectConnection  # (a large array read straight into its buffer)
from parity.run.noise import relay
from parity.run.interpreter import ROOT, python  # ROOT: the directory holding this same parity
from parity.run.wire import pack as _pack, plain as _plain, recv as _recv, send as _send

__all__ = ["ENV", "enabled", "shutdown", "stop_all", "group_of", "GROUPS"]

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
        self._asked = False

    @classmethod
    def attach(cls, group: str, proc, conn) -> "_Worker":
        """A worker whose process someone else started (``proc``: a ``Popen``'s poll/wait/kill/returncode)."""
        self = cls.__new__(cls)
        self.group, self.proc, self.conn, self._keys = group, proc, conn, 0
        self._asked = False
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

    def ask_stop(self) -> None:
        """Ask the worker to end, without waiting (:meth:`stop` waits): several asked first end side by side."""
        try:
            if not self._asked and self.alive:
                self._asked = True
                self.send(("stop",))
        except (OSError, ValueError):
            pass

    def stop(self) -> None:
        self.ask_stop()
        try:
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


def stop_all(workers) -> None:
    """Stop ``workers`` side by side: each asked first, then each waited for (a forked worker's end is seen at its
    zygote's next reaping, every 0.2 s: measured, four workers stopped one after the other took 0.8 s)."""
    for worker in workers:
        worker.ask_stop()
    for worker in workers:
        worker.stop()


def shutdown() -> None:
    """Stop every worker (at exit; tests call it to start fresh)."""
    stopping = list(_WORKERS.values())
    _WORKERS.clear()
    stop_all(stopping)


atexit.register(shutdown)


def group_of(port: str) -> str | None:
    """The worker a port runs in, or None (this process)."""
    return GROUPS.get(PortSpec.parse(port).framework)


def _raise(packed) -> BaseException:
    fn, args = packed
    return fn(*args)
