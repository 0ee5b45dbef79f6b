"""The zygote's own process (:mod:`parity.run.zygote` starts it and asks it for workers): it imports the
frameworks, runs nothing, and forks a worker per request; where it imports TensorFlow and torch, torch's
imports and workers are a second zygote's, forked before either import (:mod:`parity.run.zygote`'s docstring)."""

from __future__ import annotations

import os
import signal
import sys
import time

from parity.run import isolate
from parity.run.zygote import (GROUPS, _NEEDS, _TORCH_GROUPS, _WAIT, _comparable, _pid_file, _splits,
                               _torch_path)

__all__: list[str] = []


def _main(parent: int, path: str, serve, imports=("tf1",)) -> None:
    """Import ``imports``' frameworks (run nothing), then fork a worker per request (``serve(fd)``: the worker's
    loop, :func:`parity.run.workers._main`), for as long as ``parent`` lives."""
    import socket

    isolate._die_with(parent)
    from parity.run.frameworks import preload, prepare_environment

    mine = _comparable(os.environ)  # the starting process's environment (what a fresh worker would get)
    prepare_environment()  # tf_impl sets TensorFlow's environment before it is imported
    torch_zygote, listener = None, None
    signal.signal(signal.SIGTERM, _stop)  # (set before the imports: stopped while importing, it stops the torch zygote)
    try:
        if _splits(imports):  # torch imported beside TensorFlow by a zygote of its own (the module's docstring)
            torch_zygote = os.fork()
            if torch_zygote == 0:
                isolate._die_with(os.getppid())  # (with this one: it stops it, or dies and takes it along)
                path, imports = _torch_path(path), ("torch",)
                with open(_pid_file(path) + ".tmp", "w") as fh:
                    fh.write(str(os.getpid()))
                os.rename(_pid_file(path) + ".tmp", _pid_file(path))
            else:
                imports = tuple(f for f in imports if f != "torch")
        for framework in imports:
            preload(framework)
        added = {k: v for k, v in os.environ.items() if k not in mine or mine[k] != v}  # what importing set
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path + ".tmp")
        listener.listen(8)
        listener.settimeout(0.2)  # (how often ended workers are reaped, their exit codes written: _reap)
        os.rename(path + ".tmp", path)  # the path appears when the zygote is ready
        groups = {g for g, need in _NEEDS.items() if need is None or need in imports}
        if torch_zygote:  # (numpy's workers are the torch zygote's)
            groups -= set(_TORCH_GROUPS)
        _serve(listener, mine, added, serve, groups, os.path.dirname(path))
    except _Stop:
        pass
    finally:  # (whatever ended it: an import that failed too stops and reaps the torch zygote, then raises)
        _end(listener, torch_zygote)


def _end(listener, torch_zygote) -> None:
    if listener is not None:
        listener.close()
    if torch_zygote:  # it waits for its workers too, then ends; this one waits for it below
        try:
            os.kill(torch_zygote, signal.SIGTERM)
        except OSError:
            pass
    end = time.monotonic() + _WAIT  # wait for the workers (their CPU time is then counted in ours)
    while time.monotonic() < end:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.05)
        except ChildProcessError:
            break
        except _Stop:  # (a second SIGTERM: keep waiting)
            continue


class _Stop(BaseException):
    """SIGTERM: stop. Not an ``Exception``: raised while TensorFlow or torch is being imported, no ``except
    Exception`` of theirs may swallow it (the zygote would go on, and be killed with its torch zygote orphaned)."""


def _stop(signum, frame) -> None:
    raise _Stop


def _reap(directory: str | None = None) -> None:
    """Reap the ended workers; each one's exit code in ``directory/exit-PID`` for its harness (:class:`Forked`)."""
    try:
        while True:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid <= 0:
                return
            if directory:
                try:
                    with open(os.path.join(directory, f"exit-{pid}.tmp"), "w") as fh:
                        fh.write(str(os.waitstatus_to_exitcode(status)))
                    os.rename(os.path.join(directory, f"exit-{pid}.tmp"), os.path.join(directory, f"exit-{pid}"))
                except OSError:
                    pass
    except ChildProcessError:
        pass


def _serve(listener, mine: dict, added: dict, serve, groups=frozenset(GROUPS), directory: str | None = None) -> None:
    import socket
    from multiprocessing.connection import Connection
    from multiprocessing.reduction import recv_handle

    while True:
        _reap(directory)  # ended workers (a zombie until then), their exit codes written for their harnesses
        try:
            conn = Connection(listener.accept()[0].detach())
        except socket.timeout:
            continue
        except OSError:
            return
        try:
            group, comparable, env, harness, cwd = conn.recv()
            if comparable != mine or group not in groups:  # (a framework not imported here: start it fresh)
                conn.send(False)
                conn.close()
                continue
            conn.send(True)
            sock_fd, err_fd = recv_handle(conn), recv_handle(conn)
        except (EOFError, OSError):
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            _child(listener, conn, dict(env, **added), cwd, harness, sock_fd, err_fd,
                       isolate.serve_case if group == isolate.GROUP else serve)
        os.close(sock_fd)
        os.close(err_fd)
        try:
            conn.send(pid)
        except OSError:
            pass
        conn.close()


def _child(listener, conn, env: dict, cwd: str, harness: int, sock_fd: int, err_fd: int, serve) -> None:
    """A forked worker: the asking harness's environment and directory, stderr to its pipe, then the worker's loop."""
    code = 1
    try:
        listener.close()
        conn.close()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        isolate._die_with(os.getppid())  # SIGKILL when the zygote dies (as a fresh worker with its harness)
        os.dup2(err_fd, 2)
        os.close(err_fd)
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        _watch(harness)
        serve(sock_fd)
        code = 0
    except BaseException:  # noqa: BLE001 -- its traceback goes to the harness's stderr relay
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _watch(pid: int, period: float = 0.5) -> None:
    """End this process when ``pid`` (the harness it serves, not its parent) is gone."""
    import threading

    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except OSError:
                pass
            time.sleep(period)

    threading.Thread(target=watch, name="parity-harness-watch", daemon=True).start()
