"""The errors of parity, and the exit codes the command line gives them.

Exit-code contract (``parity --help``, README):

    0  everything behaved as it must
    1  a divergence (or a must-diverge case that did not diverge, a must-refuse port that ran)
    2  the user's input is wrong: case, file, port file, path, option  (:class:`ParityError`)
    3  a port crashed: raised, called sys.exit, broke the port protocol, or refused with
       another error than the case expects                          (:class:`PortError`)
    4  parity itself failed: a bug, reported with a bug-report line  (any other exception)
    130 interrupted (Ctrl-C); no output file is left half-written (run --traces keeps NAME.trace.partial)

When several apply (a run of many cases), the highest of 1 and 3 wins.
"""

from __future__ import annotations

import contextlib
import os
import sysconfig
import traceback
from types import TracebackType

__all__ = [
    "ParityError",
    "PortError",
    "UserFileError",
    "EXIT_OK",
    "EXIT_DIVERGED",
    "EXIT_USAGE",
    "EXIT_PORT",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_CODES",
    "user_frames",
    "warnings_at_users_lines",
]

EXIT_OK = 0
EXIT_DIVERGED = 1
EXIT_USAGE = 2
EXIT_PORT = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

#: code -> meaning, the one table behind ``--help``, the README and the JSON report.
EXIT_CODES = {
    EXIT_OK: "everything behaved as it must",
    EXIT_DIVERGED: "a divergence (two runs non-finite at the same place included: verdict nonfinite), a must-diverge case that did not diverge, or a port that had to refuse and ran",
    EXIT_USAGE: "the input is wrong: case, file, port file, path or option (one line says which)",
    EXIT_PORT: "a port crashed: raised, called sys.exit, broke the port protocol, or refused with another "
    "error than the case expects (its file and line shown)",
    EXIT_INTERNAL: "parity itself failed (a bug: the line says what to report)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); no output file is left half-written (run --traces keeps an interrupted trace as NAME.trace.partial)",
}

_PARITY_DIR = os.path.dirname(os.path.abspath(__file__))


class ParityError(Exception):
    """Report a user-facing problem (bad input, bad trace, bad port file) in one line: exit code 2.

    Args:
        message: what went wrong, phrased for the user.
        case: the case name the problem belongs to, if any.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, case: str | None = None):
        self.case = case
        super().__init__(f"{case}: {message}" if case else message)


def _is_library(filename: str) -> bool:
    """Whether a frame belongs to parity's harness code or an installed library (not a port)."""
    path = os.path.abspath(filename)
    if path.startswith(_PARITY_DIR + os.sep) and os.sep + "oracle" + os.sep not in path:
        return True
    parts = path.split(os.sep)
    return "site-packages" in parts or "dist-packages" in parts or filename.startswith("<frozen")


def user_frames(tb: TracebackType | None, *, limit: int = 3) -> list[traceback.FrameSummary]:
    """Return the last ``limit`` frames of a traceback that are in a port's own files.

    A port's own files are anything outside parity's harness modules and outside installed
    libraries (TensorFlow, torch): a user's port file, or ``tf_impl``/``torch_impl``. The
    innermost of them is where the port went wrong (the frames below it are the framework
    raising on its behalf). When every frame is a library's, the innermost frames are returned.
    """
    frames = traceback.extract_tb(tb) if tb is not None else []
    own = [f for f in frames if not _is_library(f.filename)]
    return (own or frames)[-limit:]


#: Python's own library: never a user's file.
_STDLIB = tuple(os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib"))
#: parity's own adapters of users' code: a warning raised there is reported at the user's line.
_ADAPTER_DIRS = tuple(os.path.join(os.path.dirname(_PARITY_DIR), d) + os.sep for d in ("tf_impl", "torch_impl"))


def _is_users(filename: str) -> bool:
    """Whether a frame is in a user's own file: not parity's, not its adapters', not an installed library's,
    not Python's own."""
    if filename.startswith("<"):  # "<string>": an interpreter's -c code (a worker's bootstrap), "<stdin>": no file
        return False
    return not _is_library(filename) and not os.path.abspath(filename).startswith(_ADAPTER_DIRS + _STDLIB)


@contextlib.contextmanager
def warnings_at_users_lines():
    """While inside: a warning shown at a line of parity's (a library warning with ``stacklevel`` pointing at
    the harness that called the user's code) is shown at the innermost line of the user's own file on the
    stack instead, with where it was raised. Warnings already at a user's line, or raised with no user's
    frame on the stack, are shown as Python shows them."""
    import sys
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if _is_library(filename) or os.path.abspath(filename).startswith(_ADAPTER_DIRS):
            frame = sys._getframe(1)
            while frame is not None and not _is_users(frame.f_code.co_filename):
                frame = frame.f_back
            if frame is not None:
                message = f"{message} (raised at {filename}:{lineno})"
                filename, lineno, line = frame.f_code.co_filename, frame.f_lineno, None
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


class PortError(ParityError):
    """Carry what went wrong inside a port: an exception it raised, a ``sys.exit``, a protocol break.

    The harness does not hide these: a case that expects each framework to refuse
    (seed 004's "nothing to train") checks each refusal against the one it states
    (:class:`parity.cases.case.Refusal`); anywhere else a port error is a crash (exit code 3).

    Args:
        port: ``framework[:variant]``.
        phase: "build", "load", "step 3", ...
        exc: the exception the port raised (its traceback gives the file and line), or a
            one-line message for a protocol break found by the harness.
        case: the case name.

    Attributes:
        exc_type: the exception's class name ("ProtocolError" for a message).
        exc_types: the class names of its MRO, so an expected ``ValueError`` matches a subclass.
        exc_message: the first line of its message.
        frames: the last frames in the port's own files (file, line, function, source line).
    """

    exit_code = EXIT_PORT

    def __init__(self, port: str, phase: str, exc: BaseException | str, *, case: str | None = None):
        self.port = port
        self.phase = phase
        if isinstance(exc, str):
            exc = _ProtocolError(exc)
        if isinstance(exc, PortError):  # re-wrapped (the runner wraps protocol errors): keep the original
            self.exc_type, self.exc_types, self.exc_message = exc.exc_type, exc.exc_types, exc.exc_message
            self.frames = exc.frames
        else:
            self.exc_type = "ProtocolError" if isinstance(exc, _ProtocolError) else type(exc).__name__
            self.exc_types = [c.__name__ for c in type(exc).__mro__]
            if isinstance(exc, SystemExit):
                self.exc_message = f"the port called sys.exit({exc.code!r})"
            else:
                text = str(exc).strip()
                self.exc_message = text.splitlines()[0] if text else ""
            self.frames = user_frames(exc.__traceback__)
        where = f" ({self.where})" if self.where else ""
        super().__init__(f"{port} port raised {self.exc_type} during {phase}: {self.exc_message}{where}", case=case)

    @property
    def where(self) -> str:
        """``file:line in function`` of the innermost frame in the port's own files ("" if unknown)."""
        if not self.frames:
            return ""
        f = self.frames[-1]
        return f"{_short(f.filename)}:{f.lineno} in {f.name}"

    def traceback_lines(self) -> list[str]:
        """The port's own frames, innermost last, each ``file:line in function: source``."""
        return [f"{_short(f.filename)}:{f.lineno} in {f.name}" + (f": {f.line.strip()}" if f.line else "") for f in self.frames]


class UserFileError(PortError):
    """A user's file raised (a port file at import, a program file at import, in ``parity_program()`` or
    while captured): exit 3, with the innermost line of the user's own file (:attr:`PortError.where`).

    Args:
        path: the user's file.
        phase: "at import", "in parity_program()", ...
        exc: what it raised (a ``SyntaxError`` gives its own line: the file has no frame).
        kind: how the file is named in the message ("port file", "program file").
    """

    def __init__(self, path: str, phase: str, exc: BaseException, *, kind: str = "file"):
        import os
        import traceback

        super().__init__(os.path.basename(path), phase, exc)
        if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:  # no frame of the file: it did not compile
            self.frames = [traceback.FrameSummary(exc.filename, exc.lineno, "<module>", line=exc.text or "")]
        where = f" ({self.where})" if self.where else ""
        self.args = (f"{kind} {path} raised {self.exc_type} {phase}: {self.exc_message}{where}",)


class _ProtocolError(Exception):
    """A port broke the protocol (a stage of the wrong type, a missing parameter)."""


def _short(filename: str) -> str:
    """A path relative to the working directory when it is below it, else as given."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel
