"""The error model that tells float rounding from a semantic difference.

Errors are measured relative to a tensor's scale (its largest magnitude in either
trace), so a 1e-6 gradient of a tiny-init network is judged as strictly as an O(1)
one (an absolute atol of 1e-5 would pass any gradient-level bug there: PITFALLS P33).

* float64: faithful ports agree to ~1e-15 relative on these cases (measured; see
  docs/tolerance.md). Anything above :data:`FLOAT64_SEMANTIC` (1e-10) is a semantic
  difference, whatever its size.
* float32: the bound is written from what the step computes::

      bound = SAFETY * eps32 * sqrt(reduction) * passes(stage) * (step + 1) * growth**step * condition

  - ``eps32 = 2**-23``: one rounding of a float32 result;
  - ``sqrt(reduction)``: a sum of n rounded terms has a random-walk error ~ sqrt(n) eps
    (the worst case, n eps, is never approached by the summation orders BLAS uses);
  - ``passes``: how many layers a value has gone through by that stage: ``depth`` for
    the forward outputs, ``depth+1`` for the loss, ``2 depth + 1`` for the gradients
    (backward doubles the chain), ``2 depth + 2`` for parameters, slots and state;
  - ``(step + 1)``: a parameter difference made at step k is still there at every
    later step, so the differences add up linearly with the step count;
  - ``growth``: a per-case factor (>= 1) for training dynamics that amplify a parameter
    difference (declared in the case's :class:`~parity.cases.case.Cost`, with its reason);
  - ``condition``: a per-case factor (>= 1) for a loss that amplifies rounding of its
    inputs (a saturated softmax), on the loss and every stage after it, declared with the
    measured figure that justifies it;
  - ``SAFETY = 4``: the random-walk estimate is one standard deviation; four keep a
    faithful port's false-alarm probability negligible.
* inputs must be identical in both dtypes: the harness feeds the same numbers and the
  layout conversions are permutations (exact).

The report prints every error in units of its bound, so a reader sees how much room
there is.
"""

from __future__ import annotations

import math

from parity.cases.case import Cost

__all__ = ["FLOAT64_SEMANTIC", "EPS", "SAFETY", "bound", "passes"]

FLOAT64_SEMANTIC = 1e-10
EPS = {"float32": 2.0**-23, "float64": 2.0**-52}
SAFETY = 4.0


def passes(stage: str, depth: int) -> int:
    """Return how many layers of rounding a value has been through by ``stage``."""
    d = max(int(depth), 1)
    return {
        "inputs": 0,
        "forward": d,
        "loss": d + 1,
        "gradients": 2 * d + 1,
        "processed_gradients": 2 * d + 1,
        "learning_rate": 1,
        # Optimizer slots hold squared gradients (Adam's v, RMSprop's ms, Adagrad's sum): a
        # square doubles the gradient's relative error, then the slot update adds one more.
        "slots": 2 * (2 * d + 1) + 1,
    }.get(stage, 2 * d + 2)


def bound(dtype: str, stage: str, step: int, cost: Cost | None = None) -> float:
    """Return the largest relative error that rounding alone explains.

    Args:
        dtype: "float64" or "float32".
        stage: the stage compared.
        step: the step index (0-based).
        cost: the case's computation size.
    """
    if stage == "inputs":
        return 0.0
    if dtype == "float64":
        return FLOAT64_SEMANTIC
    cost = cost or Cost()
    model = (
        SAFETY
        * EPS["float32"]
        * math.sqrt(max(cost.reduction, 1))
        * passes(stage, cost.depth)
        * (step + 1)
        * max(cost.growth, 1.0) ** step
        * (max(cost.condition, 1.0) if stage != "forward" else 1.0)
    )
    return min(model, 1.0)
