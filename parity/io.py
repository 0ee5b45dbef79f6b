"""Writes that cannot corrupt: every output goes to a temporary file beside it, then is renamed.

* :func:`check_output` / :func:`check_output_dir`: called for every output path BEFORE any
  port runs; they create the directory and prove it writable (by writing a file there: root
  passes ``os.access`` on a read-only mount), or raise a one-line :class:`ParityError`.
* :func:`atomic_write` (text or bytes through a file object) and :func:`atomic_path` (a
  temporary path for writers that want one, like ``np.savez``): the data goes to a hidden
  temporary file in the target directory (a name of its own: ``mkstemp``), which is fsync'ed
  and renamed over the target only when everything was written. An exception, Ctrl-C or
  SIGTERM removes the temporary file: the target is either the old file or the complete new
  one, never a partial one.
* A write that fails (a full disk, a quota, a read-only file system) is a one-line
  :class:`ParityError`: ``cannot write FILE: No space left on device`` (exit 2, not a bug).
* :func:`on_terminate` / :func:`forget`: what to undo if SIGTERM comes while a file is being
  written (the atomic writes use it; a trace writer keeps its readable prefix with it).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import os
import signal
import tempfile
import threading
from typing import IO, Callable, Iterator

from parity.errors import ParityError

__all__ = ["check_output", "check_output_dir", "atomic_write", "atomic_path", "write_text", "write_error",
           "on_terminate", "forget"]

#: errors of the storage, not of the program: a full disk, a quota, a file too large, a read-only mount, I/O
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _describe(what: str, path: str) -> str:
    return f"{what} {path}" if what else path


def write_error(path: str | os.PathLike, exc: OSError) -> ParityError:
    """The one-line error of a write to ``path`` that failed: ``cannot write PATH: No space left on device``."""
    return ParityError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}")


def _ensure_dir(directory: str, label: str) -> None:
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ParityError(f"cannot write {label}: {directory} exists and is not a directory")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise ParityError(f"cannot write {label}: cannot create {exc.filename or directory}: {exc.strerror or exc}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".parity-probe-")
    except OSError as exc:
        raise ParityError(f"cannot write {label}: {directory}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_dir(directory: str | os.PathLike, what: str = "") -> str:
    """Create ``directory`` if needed and check a file can be written in it; return its absolute path.

    Args:
        directory: the directory.
        what: the option it came from ("--traces"), for the message.

    Raises:
        ParityError: it cannot be created or written (one line naming the path and why).
    """
    directory = os.path.abspath(os.fspath(directory))
    _ensure_dir(directory, _describe(what, directory))
    return directory


def check_output(path: str | os.PathLike, what: str = "") -> str:
    """Check that ``path`` can be written (creating its directory); return its absolute path.

    Args:
        path: the file.
        what: the option it came from ("--json"), for the message.

    Raises:
        ParityError: the path is a directory, or its directory cannot be created or written.
    """
    path = os.path.abspath(os.fspath(path))
    label = _describe(what, path)
    if os.path.isdir(path):
        raise ParityError(f"cannot write {label}: it is a directory")
    if os.path.exists(path) and not os.path.isfile(path):
        # a device or a pipe: the atomic write (a temporary file renamed over the path) would replace it
        raise ParityError(f"cannot write {label}: it is not a regular file (a device or a pipe)")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ParityError(f"cannot write {label}: the file is read-only")
    _ensure_dir(os.path.dirname(path), label)
    return path


# -- SIGTERM: undo what is half written --------------------------------------------------------------
_PENDING: dict[int, tuple[int, Callable[[], None]]] = {}  # token -> (pid, cleanup)
_TOKENS = itertools.count()
_LOCK = threading.RLock()  # re-entrant: the handler may run while the main thread holds it
_PREVIOUS: list = []  # the SIGTERM handler ours replaced (while a write is pending)
_EXIT_HOOK: list = []  # [True] once the atexit hook is registered


def _on_sigterm(signum, frame) -> None:
    """Run every pending cleanup of this process, then do what SIGTERM did before (by default: die of it)."""
    previous = _PREVIOUS[0] if _PREVIOUS else signal.SIG_DFL
    _run_pending()
    _restore()
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)  # die of the signal, as without this handler


def _run_pending() -> None:
    """Run (once) every pending cleanup of this process; at interpreter exit too (a trace writer nobody
    closed keeps its prefix under its ``.partial`` name)."""
    pid = os.getpid()
    for token, (owner, cleanup) in list(_PENDING.items()):
        _PENDING.pop(token, None)
        if owner == pid:
            with contextlib.suppress(Exception):
                cleanup()


def _install() -> None:
    if not _EXIT_HOOK:
        atexit.register(_run_pending)
        _EXIT_HOOK.append(True)
    if _PREVIOUS or threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current in (signal.SIG_IGN, None) or current is _on_sigterm:
        return  # ignored, or set outside Python: leave it
    signal.signal(signal.SIGTERM, _on_sigterm)
    _PREVIOUS.append(current)


def _restore() -> None:
    if not _PREVIOUS:
        return
    previous = _PREVIOUS.pop()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        signal.signal(signal.SIGTERM, previous)


def on_terminate(cleanup: Callable[[], None]) -> int:
    """Run ``cleanup`` if this process gets SIGTERM (or exits) before :func:`forget` is called with the returned token.

    The handler is installed while something is pending (in the main thread only; elsewhere the
    exceptions' own cleanup applies) and the previous one restored after.
    """
    with _LOCK:
        token = next(_TOKENS)
        _PENDING[token] = (os.getpid(), cleanup)
        _install()
    return token


def forget(token: int) -> None:
    """Drop a cleanup registered by :func:`on_terminate` (the write finished or was undone)."""
    with _LOCK:
        _PENDING.pop(token, None)
        if not any(pid == os.getpid() for pid, _ in _PENDING.values()):
            _restore()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# -- atomic writes ----------------------------------------------------------------------------------
def _temp_in(path: str) -> tuple[int, str]:
    directory, name = os.path.split(path)
    _, ext = os.path.splitext(name)
    try:
        # The same extension: writers like np.savez append ".npz" to a path lacking it.
        return tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=f".tmp{ext}")
    except OSError as exc:
        raise write_error(path, exc) from None


def _commit(tmp: str, path: str) -> None:
    # mkstemp creates the file 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def _temporary(path: str, shown: str, storage_only: bool) -> Iterator[str]:
    """Own the temporary file ``tmp`` of ``path`` for the block: removed on any exception or SIGTERM;
    an OSError becomes ``cannot write SHOWN: why`` (``storage_only``: only the storage's errors)."""
    fd, tmp = _temp_in(path)
    os.close(fd)
    token = on_terminate(lambda: _unlink(tmp))
    try:
        yield tmp
    except OSError as exc:
        _unlink(tmp)
        if storage_only and exc.errno not in _STORAGE_ERRNOS and exc.filename != tmp:
            raise
        raise write_error(shown, exc) from None
    except BaseException:
        _unlink(tmp)
        raise
    finally:
        forget(token)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The directory must exist (:func:`check_output` creates it). On any exception, including
    KeyboardInterrupt, or SIGTERM, the temporary file is removed; a failure of the storage (a
    full disk) is a one-line ParityError, anything else propagates.
    """
    shown = os.fspath(path)
    path = os.path.abspath(shown)
    with _temporary(path, shown, storage_only=True) as tmp:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _commit(tmp, path)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` when the block succeeds.

    Args:
        path: the target.
        mode: "w" (text) or "wb" (bytes).
        encoding: for text mode.

    Raises:
        ParityError: the write failed (``cannot write PATH: No space left on device``); nothing is left.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    shown = os.fspath(path)
    path = os.path.abspath(shown)
    with _temporary(path, shown, storage_only=False) as tmp:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), mode, encoding=encoding if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _commit(tmp, path)


def write_text(path: str | os.PathLike, text: str, what: str = "") -> str:
    """Check ``path``, then write ``text`` to it atomically; return the absolute path."""
    path = check_output(path, what)
    with atomic_write(path) as fh:
        fh.write(text)
    return path
