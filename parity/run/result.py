"""A case's result, THE verdict on it, and THE command's exit code.

:class:`CaseResult` is what :func:`parity.run.runner.run_case` returns; :func:`case_status` is the one
place that decides whether a case passed, failed, crashed or did not run; :func:`exit_code` turns
statuses into the command's exit code. ``parity run``, ``check``, ``compare`` and ``diff`` all use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from parity.cases.case import Case
from parity.comparison.records import Comparison
from parity.errors import PortError
from parity.trace.memory import Window

__all__ = ["CaseResult", "case_status", "exit_code", "error_expected", "cannot_run_dtype", "refusal_matches", "refusals_ok"]


def refusal_matches(case: Case, port: str, error) -> bool:
    """Whether a port's error (a :class:`~parity.errors.PortError`) is the refusal ``case`` expects of it."""
    expected = case.expected_refusal(port)
    if case.expect != "error" or expected is None:
        return False
    types_ = getattr(error, "exc_types", None) or [getattr(error, "exc_type", "")]
    return expected.matches(types_, getattr(error, "exc_message", ""))


def refusals_ok(case: Case, errors: Mapping[str, Mapping[str, Any]], traces: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether an ``expect="error"`` case behaved: in every dtype run, every port that ran refused as stated.

    Args:
        case: the case.
        errors: dtype -> port -> its :class:`~parity.errors.PortError`.
        traces: dtype -> port -> trace (a port that trained did not refuse).

    Ports that did not run (framework not installed) are in neither: they are "not run",
    not refusals; a dtype in which no port ran is not a pass.
    """
    if not errors:
        return False
    for dtype, errs in errors.items():
        if not errs or traces.get(dtype):
            return False
        if not all(refusal_matches(case, port, err) for port, err in errs.items()):
            return False
    return True


@dataclass
class CaseResult:
    """Everything one case produced: trace windows, refusals and comparisons, per dtype.

    ``traces[dtype][port]`` is the port's :class:`~parity.trace.memory.Window` (what a streamed run
    keeps; every step with ``run_case(..., keep="all")``); :meth:`release` drops its full
    tensors once the case is reported, so a run of many cases holds one case's tensors at most.
    """

    case: Case
    traces: dict[str, dict[str, Window]] = field(default_factory=dict)
    errors: dict[str, dict[str, PortError]] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ports(self) -> list[str]:
        seen: list[str] = []
        for per in list(self.traces.values()) + list(self.errors.values()):
            seen += [p for p in per if p not in seen]
        return seen

    @property
    def status(self) -> str:
        """The case's verdict: "passed", "failed", "crashed" or "not_run" (:func:`case_status`)."""
        return case_status(self)

    @property
    def passed(self) -> bool:
        """Whether the case behaved as it must (:func:`case_status` says "passed"): all ports agree, or
        (expect="diverge") some pair diverges, or (expect="error") every port refused as stated.
        A case of which no pair could be compared has not passed: it was not run."""
        return case_status(self) == "passed"

    def release(self) -> None:
        """Drop the windows' full tensors (small tensors, health series and comparisons stay)."""
        for per in self.traces.values():
            for w in per.values():
                release = getattr(w, "release", None)
                if callable(release):
                    release()


# -- THE verdict and THE exit code ------------------------------------------------------------------

#: case status -> the exit code it contributes (the command exits with the highest).
_STATUS_CODE = {"passed": 0, "not_run": 0, "failed": 1, "crashed": 3}


def _errors_of(result: CaseResult) -> list[tuple[str, str, Any]]:
    return [(dtype, port, err) for dtype, errs in result.errors.items() for port, err in errs.items()]


def error_expected(result: CaseResult, port: str, err) -> bool:
    """Whether a port's error is the refusal its (expect="error") case states for it."""
    return refusal_matches(result.case, port, err)


def cannot_run_dtype(err) -> bool:
    """Whether a port's error says the program cannot run in that dtype (a capture adapter's
    :class:`~parity.portkit.program.DtypeError`, with its fix): that dtype is not checked, which is
    not a pass, but not a crash either."""
    return getattr(err, "exc_type", "") == "DtypeError"


def case_status(result: CaseResult) -> str:
    """The one verdict on a case, for every command (``run``, ``check``, ``compare``, ``diff``).

    "passed"; "failed" (a divergence, a must-diverge / must-refuse case that did not, or a dtype
    the program cannot run in); "crashed" (a port raised, exited or broke the protocol, or refused
    in other words than the case states); "not_run" (no pair could be compared: frameworks not
    installed or left out).
    """
    case = result.case
    errors = _errors_of(result)
    if any(not error_expected(result, port, err) and not cannot_run_dtype(err) for _, port, err in errors):
        return "crashed"
    if case.expect == "error":
        if not errors and not any(result.traces.values()):
            return "not_run"
        return "passed" if refusals_ok(case, result.errors, result.traces) else "failed"
    if errors:  # only DtypeErrors are left: that dtype could not be checked
        return "failed"
    if not result.comparisons:
        return "not_run"
    if case.expect == "diverge":
        return "passed" if any(not c.ok for c in result.comparisons) else "failed"
    return "passed" if all(c.ok for c in result.comparisons) else "failed"


def exit_code(statuses: Iterable[str]) -> int:
    """The command's exit code for these case statuses (see :mod:`parity.errors`)."""
    return max((_STATUS_CODE[s] for s in statuses), default=0)


