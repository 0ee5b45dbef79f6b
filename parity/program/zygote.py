"""``parity diff``'s program workers forked from one interpreter per program that imported its framework.

Each program has two workers (:class:`parity.program.remote.Pool`: its float64 run with the probes and the
facts; its float32 run with the conditioning run), and each fresh interpreter imported the framework again:
TensorFlow ~4.7 s of CPU, torch ~1.6 s (``python -c "import tensorflow"``, the 2-core machine), of a
``parity diff`` whose two programs' bare runs cost ~14 s all told. So each side's workers are forked from a
*zygote* of that side: a process started by the harness that reads the program's source as
:func:`parity.program.load.load_program` does (its framework, ``TF_USE_LEGACY_KERAS`` where needed), imports
the framework, its capture adapter and parity's worker modules, and runs nothing (no graph, no session, no
tensor, one thread). A forked worker is as fresh as a new interpreter (its own graph, session, random state:
every capture seeds them) and serves the harness as one (:func:`parity.run.workers._main`).

The zygote is the workers' parent: it reaps them and tells the harness each one's exit code (a program that
calls ``os._exit(9)`` is still reported "exit code 9"), kills one on request, and kills them all and ends
when the harness closes its socket; it dies with the harness (``PR_SET_PDEATHSIG``) and a worker with it.
Where it cannot serve (no ``os.fork``, not Linux, a framework only running the file can tell, a thread
running in it, the zygote gone) the worker is a fresh interpreter, as before. ``PARITY_ZYGOTE=0`` (the
setting :mod:`parity.run.zygote` reads for ``parity run``) turns it off here too. numpy only.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import threading

from parity.run.isolate import _die_with  # SIGKILL with the process that started it (PR_SET_PDEATHSIG)

__all__ = ["usable", "Zygote", "forked_worker", "shutdown"]

_STARTED: list = []  # this process's zygotes, stopped at exit


def usable() -> bool:
    """Whether this process may fork program workers (Linux, ``os.fork``, not ``PARITY_ZYGOTE=0``, the main thread:
    the zygote dies with the thread that started it)."""
    return (hasattr(os, "fork") and sys.platform.startswith("linux")
            and os.environ.get("PARITY_ZYGOTE", "1").strip().lower() not in ("0", "", "no", "false")
            and threading.current_thread() is threading.main_thread())


class _Child:
    """A worker the zygote forked, seen as the ``Popen`` of a fresh one (its exit code told by the zygote)."""

    stderr = None

    def __init__(self, zygote: "Zygote", pid: int):
        self.zygote, self.pid = zygote, pid

    @property
    def returncode(self):
        rc = self.zygote.exits.get(self.pid)
        return -signal.SIGKILL if rc is None and self.zygote.dead else rc  # PR_SET_PDEATHSIG killed it

    def poll(self):
        self.zygote.drain(0)
        return self.returncode

    def wait(self, timeout: float | None = None):
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            self.zygote.drain(0.1 if left is None else min(left, 0.1))
        return self.returncode

    def kill(self) -> None:
        self.zygote.kill(self.pid)


class Zygote:
    """The harness's end of one program's zygote (started at once; it imports while the harness goes on)."""

    def __init__(self, path: str):
        from multiprocessing.connection import Connection

        from parity.run.interpreter import python
        from parity.run.noise import relay

        mine, theirs = socket.socketpair()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this same parity
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        quiet = "import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)"
        code = f"from parity.program.zygote import _main; _main({os.getpid()}, {theirs.fileno()}, {path!r})"
        # watch=False: no watchdog thread in a process that forks (a fork copies one thread): PR_SET_PDEATHSIG
        self.proc = subprocess.Popen(python(code, early=quiet, watch=False), pass_fds=[theirs.fileno()], env=env,
                                     stderr=subprocess.PIPE)
        theirs.close()
        threading.Thread(target=relay, args=(self.proc.stderr,), daemon=True).start()  # its workers' stderr too
        self.conn = Connection(mine.detach())
        self.exits: dict = {}
        self.dead = False
        self.env = dict(os.environ)
        self._lock = threading.RLock()
        _STARTED.append(self)

    @property
    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def fork(self, group: str, fd: int, boot: str = "") -> _Child | None:
        """A worker named ``group`` serving the socket ``fd`` (``boot`` run first), forked; None where the zygote
        cannot fork one."""
        from multiprocessing.reduction import send_handle

        if not self.alive or dict(os.environ) != self.env:  # a setting changed since: a fresh interpreter
            return None
        with self._lock:
            try:
                self.conn.send(("fork", group, boot))
                send_handle(self.conn, fd, self.proc.pid)
                while True:
                    msg = self.conn.recv()
                    if msg[0] == "exit":
                        self.exits[msg[1]] = msg[2]
                    elif msg[0] == "forked":
                        return _Child(self, msg[1])
                    else:  # ("nofork", why)
                        return None
            except (EOFError, OSError):
                self._gone()
                return None

    def drain(self, timeout: float) -> None:
        """Read the exit codes the zygote sent (waiting up to ``timeout`` for the first)."""
        with self._lock:
            try:
                while not self.dead and self.conn.poll(timeout):
                    msg = self.conn.recv()
                    if msg[0] == "exit":
                        self.exits[msg[1]] = msg[2]
                    timeout = 0
            except (EOFError, OSError):
                self._gone()

    def _gone(self) -> None:
        """The zygote ended: its workers died with it (``PR_SET_PDEATHSIG``)."""
        self.conn.close()
        self.dead = True

    def kill(self, pid: int) -> None:
        with self._lock:
            if pid in self.exits or self.dead:
                return
            try:
                self.conn.send(("kill", pid))
            except OSError:
                self._gone()

    def stop(self) -> None:
        """End the zygote: it kills the workers still running and ends."""
        if self in _STARTED:
            _STARTED.remove(self)
        if not self.dead:
            self.dead = True
            self.conn.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def forked_worker(zygote: Zygote | None, group: str, boot: str = ""):
    """A :class:`parity.run.workers._Worker` for ``group`` forked by ``zygote`` (``boot``: what a fresh one would
    run first), or None (then a fresh one)."""
    from parity.run.workers import _Worker

    if zygote is None:
        return None
    mine, theirs = socket.socketpair()
    try:
        child = zygote.fork(group, theirs.fileno(), boot)
    finally:
        theirs.close()
    if child is None:
        mine.close()
        return None
    from parity.run.conn import DirectConnection

    # a fresh interpreter's worker but for its process (stderr: the zygote's relay); its steps' arrays read
    # straight into their buffers
    return _Worker.attach(group, child, DirectConnection(mine.detach()))


def shutdown() -> None:
    while _STARTED:
        _STARTED[-1].stop()


atexit.register(shutdown)


# -- the zygote ------------------------------------------------------------------------------------------

def _prepare(path: str) -> None:
    """What a worker would import first for the program at ``path``, imported here: its framework (read from
    the source as :func:`parity.program.load.load_program` reads it, after the same environment), its capture
    adapter and parity's worker modules. A file only running can tell about imports nothing of a framework."""
    import importlib

    import parity.program.load as load
    import parity.program.port  # noqa: F401
    import parity.run.boundary  # noqa: F401
    import parity.run.workers  # noqa: F401
    from parity.run.frameworks import PACKAGES, capture_adapter, prepare_environment

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        prepare_environment(text, path)
        framework = load._read_statically(text, path)
    except Exception:  # noqa: BLE001 -- the worker meets the same error and reports it
        return
    if framework is None:
        return
    for name in PACKAGES.get(framework, ()):
        importlib.import_module(name)
    capture_adapter(framework)
    import parity.program.mapping  # noqa: F401
    import parity.program.facts  # noqa: F401
    if framework == "tf1":
        try:  # every float64 build imports it (tf_impl.v1.capture.dtype's batch norm convention): ~0.3 s a worker
            importlib.import_module("tf_keras.src.layers.normalization.batch_normalization")
        except Exception:  # noqa: BLE001 -- not installed: nothing to import
            pass
    if framework == "torch":
        try:  # an optimizer's first step imports it (torch's compile guard): every program pays it
            importlib.import_module("torch._dynamo")
        except Exception:  # noqa: BLE001 -- an older torch: its worker imports what it needs
            pass


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _main(parent: int, fd: int, path: str) -> None:
    """The zygote: prepare (:func:`_prepare`), then fork a worker per request, reap them and tell their exit codes."""
    from multiprocessing.connection import Connection, wait
    from multiprocessing.reduction import recv_handle

    _die_with(parent)
    _prepare(path)
    import gc

    gc.collect()
    gc.freeze()  # the imports' objects: never walked by a worker's collections, never copied on write by them
    conn = Connection(fd)
    children: set = set()
    try:
        while True:
            if wait([conn], timeout=0.2 if children else None):
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    return
                if msg[0] == "kill":
                    if msg[1] in children:
                        os.kill(msg[1], signal.SIGKILL)
                elif msg[0] == "fork":
                    sock = recv_handle(conn)
                    if _threads() != 1:
                        os.close(sock)
                        conn.send(("nofork", f"{_threads()} threads"))
                        continue
                    pid = os.fork()
                    if pid == 0:
                        _child(conn, sock, msg[1], msg[2], children)
                    os.close(sock)
                    children.add(pid)
                    conn.send(("forked", pid))
            for pid in list(children):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.discard(pid)
                    conn.send(("exit", pid, os.waitstatus_to_exitcode(status)))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def _child(conn, sock: int, group: str, boot: str, siblings: set) -> None:
    """A forked worker: what ``python -c "<BOOT>; from parity.run.workers import _main; _main(fd)"`` runs."""
    code = 1
    try:
        conn.close()
        siblings.clear()
        _die_with(os.getppid())
        os.environ["_PARITY_WORKER_NAME"] = group  # (internal: names its profile, PARITY_PROFILE_WORKERS)
        from parity.run.workers import _main as serve

        exec(boot, {})  # parity.program.remote.BOOT: registers the program messages, profiles itself where asked
        serve(sock)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 -- its traceback goes to the harness's stderr relay
        import traceback

        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # as an interpreter's end: a profile is written (PARITY_PROFILE_WORKERS)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
