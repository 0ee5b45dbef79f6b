"""The command line of every Python interpreter parity starts, and how such a child dies with its parent.

parity starts child interpreters for the supervised command (:mod:`parity.cli.supervise`), the
workers (:mod:`parity.run.workers`), the isolated ports (:mod:`parity.run.isolate`,
``parity record --in-process``) and the bench. Each goes through :func:`python`:

* **nothing from the working directory**: ``python -c`` and ``python -m`` put the working
  directory first on ``sys.path``, so a ``numpy.py`` there would run in every child. The child
  starts with ``-P`` (Python >= 3.11) and its code first drops the empty entry (the working
  directory: Python 3.10 has no ``-P``) before anything is imported, then puts parity's own
  root first when it is not on the path (a source checkout run as ``python -m parity``);
* **no orphan**: the child dies with the process that started it (:func:`die_with_parent`): at
  once on Linux (``PR_SET_PDEATHSIG``), else within half a second (a watchdog thread).

The supervised command also tells its supervisor what it is doing, on the pipe its exit code
goes on (:func:`report_to`, :func:`progress`: "in the torch port (float64), during step 3"), so
that a port ending the process names itself and its step. Elsewhere (a worker, the library, an
unsupervised command) :func:`progress` does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["python", "die_with_parent", "ROOT", "report_to", "progress", "reporting"]

#: The directory that holds this ``parity`` package (and ``tf_impl``, ``torch_impl`` in a checkout).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PR_SET_PDEATHSIG = 1
_progress_fd: list = [None]  # the supervisor's pipe, in the supervised command only (report_to)


def python(code: str, *args: str, flags: list[str] | tuple[str, ...] = (), watch: bool = True,
           early: str = "") -> list[str]:
    """The command line of a child interpreter running ``code`` (``sys.argv[1:]`` = ``args``).

    ``flags``: interpreter options placed before ``-c`` (the supervisor passes its own). ``watch``:
    the child dies with this process (:func:`die_with_parent`). ``early``: statements run as soon
    as the path is safe, before parity (and numpy) is imported.
    """
    safe = ["-P"] if sys.version_info >= (3, 11) and "-P" not in flags else []
    # `sys` is built in: nothing is read from sys.path before the working directory is dropped.
    prelude = (f"import sys; sys.path[:] = [p for p in sys.path if p]; "
               f"{ROOT!r} in sys.path or sys.path.insert(0, {ROOT!r}); ")
    prelude += f"{early}; " if early else ""
    if watch:
        main = threading.current_thread() is threading.main_thread()
        prelude += (f"from parity.run.interpreter import die_with_parent; "
                    f"die_with_parent({os.getpid()}, pdeathsig={main}); ")
    return [sys.executable, *flags, *safe, "-c", prelude + code, *map(str, args)]


def die_with_parent(parent: int, *, pdeathsig: bool = True, period: float = 0.5) -> None:
    """End this process when ``parent`` (the process that started it) is gone.

    On Linux the kernel sends SIGKILL when the parent dies (``PR_SET_PDEATHSIG``; only when the
    parent started us from its main thread: the signal follows the starting *thread*). Everywhere,
    a daemon thread checks the parent every ``period`` seconds. Either way the child goes even while
    it is busy (importing a framework, running a long step): it has no one to answer any more.
    """
    if pdeathsig and sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before we were watching
        os._exit(1)

    def watch() -> None:
        import time

        while os.getppid() == parent:
            time.sleep(period)
        os._exit(1)

    threading.Thread(target=watch, name="parity-parent-watch", daemon=True).start()


def report_to(fd: int | None) -> None:
    """Send :func:`progress` records to ``fd`` (the supervisor's pipe; ``None``: nowhere)."""
    _progress_fd[0] = fd


def reporting() -> bool:
    """Whether :func:`progress` records go anywhere (this is a supervised command)."""
    return _progress_fd[0] is not None


def progress(where: str = "") -> None:
    """Tell the supervisor where this process is now (``""``: nowhere in particular), one line: if the
    process ends before its verdict, the supervisor's error line names it. A few microseconds; never raises."""
    fd = _progress_fd[0]
    if fd is None:
        return
    try:
        os.write(fd, b"@" + " ".join(where.split()).encode("utf-8", "replace") + b"\n")
    except (OSError, ValueError):  # the supervisor is gone: the parent-death signal ends us anyway
        _progress_fd[0] = None
