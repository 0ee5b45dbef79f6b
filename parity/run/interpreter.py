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
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["python", "die_with_parent", "ROOT"]

#: The directory that holds this ``parity`` package (and ``tf_impl``, ``torch_impl`` in a checkout).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PR_SET_PDEATHSIG = 1


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
