"""Framework workers forked from an interpreter that imported the frameworks (the workers' *zygote*).

Importing TensorFlow is about 5 s of CPU, torch 1.5 s, and ``parity run`` starts four workers
(``tf1``, ``tf2``, ``torch``, ``numpy``: :mod:`parity.run.workers`) per harness, eight with two jobs
(:mod:`parity.cli.jobs`). The zygote imports TensorFlow, and torch where several jobs use it (``start(uses)``), once and
runs nothing (no graph, no eager context, no session, no tensor, one thread); each worker is then a
child forked from it: as fresh as a new interpreter, without the import. Seed 003's isolated ports are recorded
by such a child too (group ``isolate``: :func:`parity.run.isolate.serve_case`), so the isolated
ports' own zygote, a third TensorFlow import, does not start.

It listens on a Unix socket in a private temporary directory; the process that starts it puts the
path in ``_PARITY_ZYGOTE`` so its job processes ask the same zygote. A request carries the
worker's group, the asking process's environment and two descriptors (the worker's end of its
socket, the write end of its stderr pipe); the reply is the child's pid. The zygote forks only for
an environment equal to its own at start (apart from the names :data:`_OWN`): anything else (a
``TF_*`` variable set since) gets a fresh interpreter, as before. A forked worker ends when its
harness closes the socket, when its harness is gone (a watchdog thread), or at once when the
zygote dies (``PR_SET_PDEATHSIG``); the zygote dies with the process that started it. The zygote reaps
its workers and writes each one's exit code where its harness reads it (:class:`Forked`: "exit code 0:
did a port call os._exit?", as for a fresh worker).
Where it imports both, torch is imported beside TensorFlow, not after it: the zygote forks a second one before
either import (the *torch zygote*, at ``socket-torch`` in the same directory, its pid in ``pid-torch``), which
imports torch and forks the ``torch`` and ``numpy`` workers while the first imports TensorFlow and forks the rest.
The two imports then share the machine's cores instead of taking turns while every job waits (measured: below,
docs/performance.md); a torch worker is forked from an interpreter that imported torch alone, as a fresh one is.
The first zygote stops the second when it stops, and waits for it. (The zygotes' own code: :mod:`parity.run.zygote_process`.)
``PARITY_ZYGOTE=0`` turns it off; where ``os.fork`` is missing it is never used.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import signal
import tempfile
import time

from parity.run import isolate

__all__ = ["ENV", "GROUPS", "enabled", "start", "fork_worker", "forked", "Forked", "shutdown"]

#: "0" (or "no", "false", empty) starts every worker as a fresh interpreter.
ENV = "PARITY_ZYGOTE"
#: the worker groups forked from it (the framework it imported)
GROUPS = ("tf1", "tf2", "torch", "numpy", isolate.GROUP)  # isolate: a case's isolated ports, recorded (parity.run.isolate)
#: what each group needs imported (a group whose framework the zygote did not import: a fresh interpreter)
_NEEDS = {"tf1": "tf1", "tf2": "tf1", isolate.GROUP: "tf1", "torch": "torch", "numpy": None}
_ADDRESS = "_PARITY_ZYGOTE_ADDRESS"  # (internal) the socket path, for the job processes
_TORCH_ADDRESS = "_PARITY_ZYGOTE_TORCH"  # (internal) the torch zygote's socket path, where torch has one of its own
#: the groups the torch zygote forks, where there is one (numpy's too: it is ready first)
_TORCH_GROUPS = ("torch", "numpy")
#: environment names that may differ between the zygote and a worker it forks (the worker gets the asking
#: process's whole environment; these are not read by an import of TensorFlow: a terminal's size, the shell's
#: directories, parity's own names; PYTHONPATH is compared without parity's root, which a worker's adds)
_OWN = frozenset({_ADDRESS, _TORCH_ADDRESS, "_PARITY_WORKER_NAME", "COLUMNS", "LINES", "PWD", "OLDPWD", "_"})
_STARTED: list = []  # [(Popen, directory)] of the zygote this process started
_WAIT = 10.0  # seconds a stopping zygote waits for its workers to end


def enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get(ENV, "1").strip().lower() not in ("0", "", "no", "false")


def _comparable(env) -> dict:
    from parity.run.interpreter import ROOT

    out = {k: v for k, v in env.items() if k not in _OWN}
    path = os.pathsep.join(dict.fromkeys(p for p in out.pop("PYTHONPATH", "").split(os.pathsep)
                                         if p and os.path.abspath(p) != ROOT))
    return dict(out, PYTHONPATH=path) if path else out


def start(uses=("tf1",)) -> None:
    """Start the zygote (once per process tree: not when this process or its parent has one), importing
    the frameworks the run ``uses`` (``tf1``/``tf2``: TensorFlow; ``torch``); other workers start fresh."""
    from parity.run import frameworks  # noqa: F401 -- its BLAS setting in our environment, as in the zygote's
    from parity.run.interpreter import python

    if not enabled() or _STARTED or os.environ.get(_ADDRESS):
        return
    directory = tempfile.mkdtemp(prefix="parity-zygote-")
    path = os.path.join(directory, "socket")
    quiet = "import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)"
    imports = sorted({"tf1" if f in ("tf1", "tf2") else f for f in uses} & {"tf1", "torch"})
    code = (f"from parity.run.workers import _main as serve; from parity.run.zygote_process import _main; "
            f"_main({os.getpid()}, {path!r}, serve, {tuple(imports)!r})")
    proc = subprocess.Popen(python(code, early=quiet, watch=False), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _STARTED.append((proc, directory))
    with open(os.path.join(directory, "pid"), "w") as fh:  # for a process that did not start it: is it alive?
        fh.write(str(proc.pid))
    os.environ[_ADDRESS] = path
    if _splits(imports):
        os.environ[_TORCH_ADDRESS] = _torch_path(path)


def _splits(imports) -> bool:
    """Whether a zygote importing ``imports`` leaves torch to a zygote of its own (the module's docstring)."""
    return "torch" in imports and len(imports) > 1


def _torch_path(path: str) -> str:
    return path + "-torch"


def _pid_file(path: str) -> str:
    """Where the zygote listening at ``path`` wrote its pid (``pid``; the torch zygote's ``pid-torch``)."""
    return os.path.join(os.path.dirname(path), "pid" + os.path.basename(path)[len("socket"):])


def shutdown() -> None:
    """Stop the zygote this process started; it waits (up to :data:`_WAIT` seconds) for the workers it forked,
    which end when their harness stops them (:func:`parity.run.workers.shutdown`: registered with atexit after
    this, so it runs first)."""
    while _STARTED:
        proc, directory = _STARTED.pop()
        os.environ.pop(_ADDRESS, None)
        os.environ.pop(_TORCH_ADDRESS, None)
        try:  # SIGTERM: it waits for its workers (their CPU time counts in ours: /usr/bin/time sees it), then ends
            proc.terminate()
            proc.wait(timeout=_WAIT + 5)
        except Exception:  # noqa: BLE001 -- stopping: never a reason to fail
            proc.kill()
            proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


atexit.register(shutdown)


def fork_worker(group: str, sock_fd: int, err_fd: int, env: dict, timeout: float = 60.0) -> int | None:
    """A worker of ``group`` forked by the zygote, serving ``sock_fd`` with its stderr on ``err_fd``: its
    pid, or None where the zygote cannot serve (none started, it is gone, another environment)."""
    import socket
    from multiprocessing.connection import Connection
    from multiprocessing.reduction import send_handle

    path = os.environ.get(_ADDRESS)
    if not enabled() or group not in GROUPS or not path:
        return None
    if group in _TORCH_GROUPS and os.environ.get(_TORCH_ADDRESS):
        path = os.environ[_TORCH_ADDRESS]
    deadline = time.monotonic() + timeout
    while True:  # the zygote may still be importing TensorFlow: its socket appears when it is ready
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            conn = Connection(s.detach())
            break
        except FileNotFoundError:  # not listening yet (importing), or gone: wait only while it lives
            s.close()
            if time.monotonic() > deadline or not _alive(os.path.dirname(path), path):
                return None
            time.sleep(0.05)
        except OSError:  # refused (its socket is there and no one listens: it died), or anything else
            s.close()
            return None
    try:
        with conn:
            conn.send((group, _comparable(env), env, os.getpid(), os.getcwd()))
            if not conn.recv():  # another environment: a fresh interpreter
                return None
            send_handle(conn, sock_fd, None)
            send_handle(conn, err_fd, None)
            return conn.recv()
    except (EOFError, OSError):
        return None


class Forked:
    """A worker the zygote forked (:mod:`parity.run.zygote`), seen as the ``Popen`` of a fresh one. Not our
    child: its exit code is the one the zygote wrote when it reaped it (:func:`_reap`), None where unknown
    (the zygote gone too)."""

    def __init__(self, pid: int, stderr, directory: str | None = None):
        self.pid, self.stderr, self.returncode, self._directory = pid, stderr, None, directory

    def poll(self):
        if self.returncode is not None:
            return self.returncode
        code = self._exit_code()
        if code is not None:
            self.returncode = code
            return code
        try:
            os.kill(self.pid, 0)
            zombie = _zombie(self.pid)  # ended, its zygote reaps it soon
        except (ProcessLookupError, FileNotFoundError):
            # reaped just now: its zygote writes the exit code right after (a moment; on a loaded machine, more)
            code, end = self._exit_code(), time.monotonic() + 2.0
            while code is None and time.monotonic() < end and self._directory and _alive(self._directory):
                time.sleep(0.01)
                code = self._exit_code()
            self.returncode = code  # (None: gone without a word, unknown)
            return 0 if code is None else code
        except OSError:
            return None
        if zombie and not (self._directory and _alive(self._directory)):
            return 0  # no zygote left to reap it and say how it ended
        return None

    def _exit_code(self):
        if not self._directory:
            return None
        path = os.path.join(self._directory, f"exit-{self.pid}")
        try:
            with open(path) as fh:
                code = int(fh.read())
        except (OSError, ValueError):
            return None
        try:
            os.unlink(path)
        except OSError:
            pass
        return code

    def wait(self, timeout: float | None = None):
        import time

        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("worker", timeout)
            time.sleep(0.02)
        return None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass


def forked(group: str, theirs, env: dict) -> Forked | None:
    """A worker of ``group`` forked by the zygote, or None (a fresh interpreter then)."""
    if group not in GROUPS or not enabled():
        return None
    read, write = os.pipe()
    try:
        pid = fork_worker(group, theirs.fileno(), write, env)
    finally:
        os.close(write)
    if pid is None:
        os.close(read)
        return None
    return Forked(pid, os.fdopen(read, "rb"), os.path.dirname(os.environ.get(_ADDRESS, "")) or None)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits to be reaped (``/proc``; FileNotFoundError where there is none)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[-1].split()[0] == b"Z"


def _alive(directory: str, path: str | None = None) -> bool:
    """Whether the zygote of ``directory`` still runs (its starter wrote its pid there); with ``path``, the one
    listening there: the torch zygote, where it wrote its pid (until it has, the first zygote: it starts it)."""
    if path is not None and os.path.basename(path) != "socket":
        try:
            with open(_pid_file(path)) as fh:
                pid = int(fh.read())
        except FileNotFoundError:
            pid = None  # (not forked yet)
        except (OSError, ValueError):
            return False
        if pid is not None:
            try:
                os.kill(pid, 0)
                return not _zombie(pid)  # (a zombie is gone: its zygote did not reap it yet)
            except FileNotFoundError:
                return True  # (no /proc: the signal said it is there)
            except OSError:
                return False
    if _STARTED and _STARTED[0][1] == directory:
        return _STARTED[0][0].poll() is None
    try:
        with open(os.path.join(directory, "pid")) as fh:
            os.kill(int(fh.read()), 0)
        return True
    except (OSError, ValueError):
        return False


isolate.FORKED.append(forked)  # its cases' recorders are forked from here too
