"""The built-in cases by name: the catalogue is imported on first use, which registers every case in it."""

from __future__ import annotations

from parity.cases.case import HEAVY_TAGS, Case, _REGISTRY
from parity.errors import ParityError

__all__ = ["get_case", "all_cases", "default_cases"]

_LOADED = False


def _load_catalog() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from parity.cases import catalog  # noqa: F401  (registers the built-in cases)


def get_case(name: str) -> Case:
    """Return the registered case ``name``, or raise a :class:`ParityError` listing close names."""
    _load_catalog()
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (run 'parity list')"
        raise ParityError(f"unknown case {name!r}{hint}") from None


def all_cases(tag: str | None = None) -> list[Case]:
    """Return every registered case, in registration order, optionally only those with ``tag``."""
    _load_catalog()
    return [c for c in _REGISTRY.values() if tag is None or tag in c.tags]


def default_cases() -> list[Case]:
    """Return the cases ``parity run --all`` runs: every case but the heavy tiers (:data:`HEAVY_TAGS`)."""
    return [c for c in all_cases() if not set(HEAVY_TAGS) & set(c.tags)]
