"""The one error type of parity, and the error a port raised."""

from __future__ import annotations

__all__ = ["ParityError", "PortError"]


class ParityError(Exception):
    """Report a user-facing problem (bad input, bad trace, bad port) in one line.

    Args:
        message: what went wrong, phrased for the user.
        case: the case name the problem belongs to, if any.
    """

    def __init__(self, message: str, *, case: str | None = None):
        self.case = case
        super().__init__(f"{case}: {message}" if case else message)


class PortError(ParityError):
    """Carry an exception raised inside a framework's port, with where it was raised.

    The harness does not hide these: a case that expects each framework to refuse
    (seed 004's "nothing to train") compares the two refusals.
    """

    def __init__(self, port: str, phase: str, exc: BaseException, *, case: str | None = None):
        self.port = port
        self.phase = phase
        self.exc_type = type(exc).__name__
        self.exc_message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        super().__init__(f"{port} port raised {self.exc_type} during {phase}: {self.exc_message}", case=case)
