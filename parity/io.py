"""Writes that cannot corrupt: every output goes to a temporary file beside it, then is renamed.

* :func:`check_output` / :func:`check_output_dir`: called for every output path BEFORE any
  port runs; they create the directory and prove it writable (by writing a file there: root
  passes ``os.access`` on a read-only mount), or raise a one-line :class:`ParityError`.
* :func:`atomic_write` (text or bytes through a file object) and :func:`atomic_path` (a
  temporary path for writers that want one, like ``np.savez``): the data goes to a hidden
  temporary file in the target directory, which is fsync'ed and renamed over the target only
  when everything was written. An exception or Ctrl-C removes the temporary file: the target
  is either the old file or the complete new one, never a partial one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

from parity.errors import ParityError

__all__ = ["check_output", "check_output_dir", "atomic_write", "atomic_path", "write_text"]


def _describe(what: str, path: str) -> str:
    return f"{what} {path}" if what else path


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
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ParityError(f"cannot write {label}: the file is read-only")
    _ensure_dir(os.path.dirname(path), label)
    return path


def _temp_in(path: str) -> tuple[int, str]:
    directory, name = os.path.split(path)
    _, ext = os.path.splitext(name)
    try:
        # The same extension: writers like np.savez append ".npz" to a path lacking it.
        return tempfile.mkstemp(dir=directory or ".", prefix=f".{name}.", suffix=f".tmp{ext}")
    except OSError as exc:
        raise ParityError(f"cannot write {path}: {exc.strerror or exc}") from None


def _commit(tmp: str, path: str) -> None:
    # mkstemp creates the file 0600; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The directory must exist (:func:`check_output` creates it). On any exception, including
    KeyboardInterrupt, the temporary file is removed and the exception propagates.
    """
    path = os.path.abspath(os.fspath(path))
    fd, tmp = _temp_in(path)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` when the block succeeds.

    Args:
        path: the target.
        mode: "w" (text) or "wb" (bytes).
        encoding: for text mode.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    path = os.path.abspath(os.fspath(path))
    fd, tmp = _temp_in(path)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str, what: str = "") -> str:
    """Check ``path``, then write ``text`` to it atomically; return the absolute path."""
    path = check_output(path, what)
    with atomic_write(path) as fh:
        fh.write(text)
    return path
