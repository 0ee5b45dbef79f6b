"""The comparisons' own cost in ``make bench``: a step's tensors measured one by one against together.

:func:`compare_timing` records a small case's numpy oracle port in float64 and float32 (no framework
imported), then measures every step's float64-vs-float32 pairs as the envelope's drift does: one by one
(:func:`parity.comparison.records._diff_arrays`, as before) and together (:func:`parity.comparison.batched.measures`),
alternating, the fastest of each counting; it checks that both give the same numbers.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["COMPARE_CASE", "compare_timing"]

#: Many small tensors a step (the seed 000 encoder: layers of 1-16 units), what ``make parity``'s cases are made of.
COMPARE_CASE = "seed000_encoder3_tiny"


def compare_timing(case_name: str = COMPARE_CASE, *, steps: int = 50, repeats: int = 5) -> dict:
    """Seconds per step of measuring every tensor pair one by one and together; their ratio; whether equal."""
    from parity.cases.registry import get_case
    from parity.comparison.batched import measures
    from parity.comparison.records import QUIET, _diff_arrays
    from parity.run.runner import run_port

    case = get_case(case_name).replace(steps=steps)
    t64, t32 = run_port(case, "numpy", "float64"), run_port(case, "numpy", "float32")
    steps_pairs = [[(s64[st][n], s32[st][n]) for st in s32 if st != "inputs" and st in s64 for n in s32[st] if n in s64[st]]
                   for s64, s32 in zip(t64.steps, t32.steps)]
    one, together = [], []
    with np.errstate(**QUIET):
        for _ in range(repeats):
            t0 = time.perf_counter()
            a = [[_diff_arrays(x, y) for x, y in pairs] for pairs in steps_pairs]
            one.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            b = [measures(pairs) for pairs in steps_pairs]
            together.append(time.perf_counter() - t0)
    n = len(steps_pairs)
    return {"case": case_name, "steps": n, "tensors": sum(map(len, steps_pairs)) // max(n, 1),
            "one_s": min(one) / n, "together_s": min(together) / n, "ratio": min(one) / min(together), "same": a == b}
