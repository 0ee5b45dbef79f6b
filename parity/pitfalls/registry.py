"""The registry: every family module's ``PITFALLS``, collected in the order of :data:`MODULES`.

A new family is one module exposing ``PITFALLS: list[Pitfall]`` and one line in
:data:`MODULES`. :func:`match_signatures` tries every signature whose stage is the first
divergence's and whose preconditions the traces meet; it never reads which pitfall a case
was built to show.
"""

from __future__ import annotations

import difflib
import importlib

import numpy as np

from parity.comparison.comparator import Comparison
from parity.errors import ParityError
from parity.trace.memory import Trace, stage_label
from parity.pitfalls.base import Context, Pitfall

__all__ = ["MODULES", "all_pitfalls", "get_pitfall", "match_signatures", "explain"]

#: The family modules, in registry order (``parity.pitfalls.<name>``).
MODULES = (
    "normalization",
    "layers",
    "sites",
    "optimizers",
    "hyper",
    "regularization",
    "loop",
    "losses",
    "rnn",
    "embedding",
    "numerics",
    "distributed",
)

_REGISTRY: dict[str, Pitfall] | None = None


def _registry() -> dict[str, Pitfall]:
    global _REGISTRY
    if _REGISTRY is None:
        reg: dict[str, Pitfall] = {}
        for mod in MODULES:
            for p in importlib.import_module(f"{__package__}.{mod}").PITFALLS:
                if p.name in reg:
                    raise ParityError(f"pitfall {p.name!r} is registered twice ({mod})")
                reg[p.name] = p
        _REGISTRY = reg
    return _REGISTRY


def all_pitfalls() -> list[Pitfall]:
    """Return every pitfall, in registry order."""
    return list(_registry().values())


def get_pitfall(name: str) -> Pitfall:
    """Return the pitfall ``name``, or raise a :class:`ParityError` listing close names."""
    reg = _registry()
    try:
        return reg[name]
    except KeyError:
        close_names = difflib.get_close_matches(name, reg, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close_names)}?)" if close_names else f" (known: {', '.join(reg)})"
        raise ParityError(f"unknown pitfall {name!r}{hint}") from None


def match_signatures(comparison: Comparison, a: Trace, b: Trace, pitfalls=None, options=None,
                     facts=None) -> list[tuple[Pitfall, float, str]]:
    """Return (pitfall, score, evidence) for every signature matching the first divergence, best first.

    A signature is tried only where the first divergence is in one of its stages and the
    traces meet its preconditions (a shape difference: only the signatures that read shapes); a checker that meets tensors it does not apply to is no match.
    ``options``: the case's options, which predictions may read (learning-rate schedule, momentum...).
    ``facts``: both programs' facts (``parity diff``), which a signature may read (a clip threshold).
    """
    first = comparison.first_divergence
    if first is None:
        return []
    # a tensor whose shapes differ is a structure divergence: only signatures that read shapes are tried on it
    shape = first.kind == "structure" and ": shape (" in first.detail
    if first.kind != "semantic" and not shape:
        return []
    ctx = Context(comparison, first, a, b, dict(options or {}), dict(facts or {}))
    found = []
    for p in pitfalls if pitfalls is not None else all_pitfalls():
        if first.stage not in p.stages or p.shapes != shape:
            continue
        try:
            if not p.applies(ctx):
                continue
            hit = p.check(ctx)
        except (KeyError, IndexError, ValueError, TypeError, FloatingPointError, np.linalg.LinAlgError):
            hit = None  # a pattern that does not apply to these tensors is no match
        if hit:
            found.append((p, hit[0], hit[1]))
    return sorted(found, key=lambda t: -t[1])


def explain(name: str) -> str:
    """Return the pitfall's explanation, both formulas, the fix, the preconditions and the signature as plain text."""
    p = get_pitfall(name)
    needs = "; ".join(r.what for r in p.requires) or "none"
    return "\n".join([
        f"{p.name} ({p.pitfall_id}, {p.family}): {p.title}",
        "",
        p.explanation,
        "",
        f"  TensorFlow: {p.tf_formula}",
        f"  PyTorch:    {p.torch_formula}",
        "",
        f"Fix: {p.fix}",
        f"Signature: first divergence in {' / '.join(stage_label(s) for s in p.stages)}; {p.pattern}.",
        f"Proposed only with: {needs}.",
        f"Cases: {p.right_case} (must match), {p.wrong_case} (must diverge, named {p.name}).",
    ])
