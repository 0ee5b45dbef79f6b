"""Which ports a case compares (:func:`pairs_of`), and every pair's comparison of one step, stage by stage
(:func:`add_together`)."""

from __future__ import annotations

import itertools

import numpy as np

from parity.comparison.records import QUIET

__all__ = ["pairs_of", "add_together"]


def add_together(jobs) -> None:
    """``cmp.add(sa, sb, drift, drift_b, cond)`` for each ``(cmp, sa, sb, drift, drift_b, cond)`` of ``jobs``, in
    their order, with the same results: the comparisons go stage by stage, every pair's stage before the next
    stage (a port's tensors are in several pairs: read again while they are in the cache; issue 21). Each
    comparator keeps only its own state; the steps are not written to (the shared memos are keyed by them)."""
    with np.errstate(**QUIET):  # once per step: _raw measures in it (diff_arrays' own state)
        runs = [(cmp, cmp._stepping(*args)) for cmp, *args in jobs]
        closing: dict[int, tuple] = {}
        while len(closing) < len(runs):
            for n, (cmp, run) in enumerate(runs):
                if n not in closing:
                    try:
                        next(run)
                    except StopIteration as done:
                        closing[n] = done.value
    for n, (cmp, _) in enumerate(runs):
        cmp._stepped(*closing[n])


def pairs_of(names: list[str], pairs: str) -> list[tuple[str, str]]:
    """The (reference, port) pairs :func:`parity.run.runner.run_case` compares: ``pairs`` is "all", "reference" or "auto"."""
    if not names:
        return []
    if pairs == "all":
        return list(itertools.combinations(names, 2))
    if pairs == "reference":
        return [(names[0], p) for p in names[1:]]
    # every pair of the frameworks' main ports, and the reference against each variant
    main = [p for p in names if ":" not in p]
    combos = list(itertools.combinations(main, 2))
    # (a variant as the reference -- the distributed cases' single device -- meets every port)
    combos += [(names[0], p) for p in names[1:] if ":" in p + names[0] and (names[0], p) not in combos]
    if not main:
        combos = [(names[0], p) for p in names[1:]]
    return combos
