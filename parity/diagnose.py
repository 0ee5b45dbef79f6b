"""Name the known pitfall that explains a divergence (filled by the pitfall catalogue).

Contract used by :mod:`parity.report`:

    diagnose(case, comparison, traces) -> list[Diagnosis]   # most likely first; [] = unknown
    settings_check(case, traces) -> list[str]                # warnings before any numbers
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnosis", "diagnose", "settings_check"]


@dataclass(frozen=True)
class Diagnosis:
    """A pitfall whose signature matches a divergence, with the evidence."""

    pitfall: str
    score: float
    evidence: str


def diagnose(case, comparison, traces) -> list[Diagnosis]:
    """Return the pitfalls whose signature matches the comparison's divergence, most likely first."""
    return []


def settings_check(case, traces) -> list[str]:
    """Return warnings about hyper-parameters the ports expose that disagree under the known conventions."""
    return []
