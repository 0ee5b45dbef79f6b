"""Record ports in a fresh interpreter: ``python -m parity.run.isolate CASE DIR JOBS``.

Ports a case marks ``isolate`` (Keras 2 graph mode cannot share a process with eager
TensorFlow) run here, all of one case's isolated ports and dtypes in ONE interpreter, so
TensorFlow is imported once per case instead of once per port and dtype. Each job
``[port, dtype]`` is written, step by step, to ``DIR/<n>.trace``; a job that fails leaves
``DIR/<n>.error`` holding its one-line message instead. The parent reads the traces
step by step (:class:`parity.run.boundary.PortRun`).

**Forked from an interpreter that imported TensorFlow** (:func:`record`, ``parity run``'s workers
mode): importing TensorFlow is most of a fresh interpreter's cost (seed 003's three cases imported it
three times). One long-lived interpreter (the *zygote*) imports ``tf_impl`` and TensorFlow and runs
nothing: no graph, no eager context, no session, a single thread. Each case's isolated ports are
recorded by a child forked from it: a process as fresh as a new interpreter (its own graph mode,
Keras session and random state) that does not import TensorFlow again. The child's output goes to
``DIR/isolate.log`` (its last line is the error a failure reports, as the fresh interpreter's stderr
was). Where ``os.fork`` is missing, the zygote is gone, or the environment changed since it started,
a fresh interpreter records them as before (:func:`parity.run.boundary.record_isolated`).

Where the workers' zygote (:mod:`parity.run.zygote`, which imported TensorFlow for the ``tf1`` and ``tf2``
workers) serves, a case's recorder is its child instead (group :data:`GROUP`, :func:`serve_case`): this
module's own zygote then never starts, and TensorFlow is imported once for the workers and these. That
module registers its ``forked`` in :data:`FORKED` (it sits above this one: no import cycle).
"""

from __future__ import annotations

import atexit
import json
import os
import sys

__all__ = ["main", "record", "record_here", "shutdown"]


def main(argv: list[str] | None = None) -> int:
    from parity.run.boundary import job_paths
    from parity.cases.registry import get_case
    from parity.errors import ParityError

    name, directory, jobs = (argv if argv is not None else sys.argv[1:])[:3]
    case = get_case(name)
    for n, (port, dtype) in enumerate(json.loads(jobs)):
        path, error = job_paths(directory, n)
        try:
            record_here(case, port, dtype, path)
        except ParityError as exc:
            with open(error, "w") as fh:
                fh.write(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return 0


def record_here(case, port: str, dtype: str, path: str, *, module=None, source=None, summary: bool = False):
    """Run one port in this process and write its trace to ``path`` step by step; return (path, steps)
    (:func:`parity.run.runner.record_port` of a port that is not, or no longer, to be isolated)."""
    from parity.cases.data import iter_batches
    from parity.run.boundary import PortRun
    from parity.trace.file import TraceWriter

    run = PortRun(case, port, dtype, module=module, source=source, isolate=False, summary=summary)
    try:
        run.open()
        with TraceWriter(path, run.manifest, summary=summary) as writer:
            writer.initial(run.initial)
            for batch in iter_batches(case, dtype):
                writer.step(run.step(batch))
        return writer.path, writer.steps
    finally:
        run.close()


# -- the zygote: a child forked per case from an interpreter that imported TensorFlow ----------------------
_ZYGOTE: list = []
_LOG = "isolate.log"


def record(case, jobs: list[tuple[str, str]], directory: str) -> list[tuple[str, str]]:
    """:func:`parity.run.boundary.record_isolated`'s contract (the same files, the same one-line error), the
    jobs recorded by a child of the zygote; by a fresh interpreter where the zygote cannot serve."""
    from parity.errors import ParityError
    from parity.run.boundary import job_paths, record_isolated

    reply = _ask((case.name, directory, json.dumps([list(j) for j in jobs])))
    if reply is None:
        return record_isolated(case, jobs, directory)
    rc, last = reply
    if rc != 0:
        raise ParityError(f"isolated ports {', '.join(p for p, _ in jobs)} failed: {last or '(no output)'}",
                          case=case.name)
    return [job_paths(directory, n) for n in range(len(jobs))]


def _ask(msg):
    """The zygote's reply (exit code, last output line) to one case's jobs, or None (it cannot serve)."""
    if not hasattr(os, "fork"):
        return None
    reply = _ask_workers_zygote(msg)
    if reply is not None:
        return reply
    z = _ZYGOTE[0] if _ZYGOTE else None
    if z is not None and (z.proc.poll() is not None or z.env != dict(os.environ)):
        shutdown()
        z = None
    if z is None:
        z = _Zygote()
        _ZYGOTE.append(z)
    try:
        z.conn.send(msg)
        return z.conn.recv()
    except (EOFError, OSError):  # it died (killed, out of memory): a fresh interpreter instead
        shutdown()
        return None


class _Zygote:
    def __init__(self):
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        from parity.run.interpreter import python

        mine, theirs = socket.socketpair()
        self.env = dict(os.environ)
        quiet = "import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)"
        # watch=False: no watchdog thread (a fork copies one thread); it dies with us by PR_SET_PDEATHSIG
        code = f"from parity.run.isolate import _zygote_main; _zygote_main({os.getpid()}, {theirs.fileno()})"
        self.proc = subprocess.Popen(python(code, early=quiet, watch=False), pass_fds=[theirs.fileno()],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(mine.detach())

    def stop(self) -> None:
        try:
            self.conn.close()  # the zygote reads EOF and ends
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - stopping: never a reason to fail
            self.proc.kill()
            self.proc.wait()


def shutdown() -> None:
    """Stop the zygote (at exit; the next isolated case starts a new one)."""
    while _ZYGOTE:
        _ZYGOTE.pop().stop()


atexit.register(shutdown)


def _die_with(parent: int) -> None:
    """SIGKILL when the process that started this one dies (Linux); end now if it is gone already."""
    import signal

    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _zygote_main(parent: int, fd: int) -> None:
    """The zygote: import TensorFlow (run nothing), then fork one child per case's jobs, one at a time."""
    from multiprocessing.connection import Connection

    _die_with(parent)
    from parity.run.frameworks import preload, prepare_environment

    prepare_environment()  # tf_impl sets TensorFlow's environment before it is imported
    preload("tf1")  # TensorFlow imported, never run: each child starts from here

    conn = Connection(fd)
    while True:
        try:
            name, directory, jobs = conn.recv()
        except (EOFError, OSError):
            return
        pid = os.fork()
        if pid == 0:  # the child: a fresh process that imported TensorFlow
            rc = 1
            try:
                conn.close()
                _die_with(os.getppid())
                rc = _record_logged(name, directory, jobs)
            finally:
                os._exit(rc)
        _, status = os.waitpid(pid, 0)
        try:
            conn.send((os.waitstatus_to_exitcode(status), _last_line(directory)))
        except (EOFError, OSError):
            return


def _record_logged(name: str, directory: str, jobs: str) -> int:
    """Record one case's jobs (:func:`main`) with this process's output in ``DIR/isolate.log``; the exit code."""
    rc = 1
    try:
        out = os.open(os.path.join(directory, _LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        rc = main([name, directory, jobs])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 -- its traceback is the log's last lines
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return rc


def _last_line(directory: str) -> str:
    """The last line of ``DIR/isolate.log`` (the error a failure reports), "" without one."""
    try:
        with open(os.path.join(directory, _LOG), errors="replace") as fh:
            lines = fh.read().strip().splitlines()
    except OSError:
        lines = []
    return lines[-1] if lines else ""


# -- forked by the workers' zygote (parity.run.zygote): TensorFlow imported once for the workers and these -----
#: the group the workers' zygote forks a case's recorder for (its child runs :func:`serve_case`)
GROUP = "isolate"
#: ``forked(group, socket, env)`` of the workers' zygote (a child or None), registered by :mod:`parity.run.zygote`, a
#: module above this one, when it is imported
FORKED: list = []


def _ask_workers_zygote(msg):
    """The reply of a child the workers' zygote (:mod:`parity.run.zygote`) forked for this case's jobs: the
    isolated ports' own zygote then never starts (a third TensorFlow import). None where it cannot serve."""
    import socket
    from multiprocessing.connection import Connection

    if not FORKED:
        return None
    mine, theirs = socket.socketpair()
    try:
        child = FORKED[0](GROUP, theirs, dict(os.environ))
    finally:
        theirs.close()
    if child is None:
        mine.close()
        return None
    conn = Connection(mine.detach())
    try:
        child.stderr.close()  # the child writes to DIR/isolate.log
        conn.send(msg)
        return conn.recv()
    except (EOFError, OSError):  # it died (killed, a crash in TensorFlow's C++): what it wrote last
        return 1, _last_line(msg[1])
    finally:
        conn.close()


def serve_case(fd: int) -> None:
    """A child of the workers' zygote: record the case's jobs read from the socket ``fd``, reply (exit code, the
    log's last line)."""
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    name, directory, jobs = conn.recv()
    rc = _record_logged(name, directory, jobs)
    conn.send((rc, _last_line(directory)))
    conn.close()


if __name__ == "__main__":
    sys.exit(main())
