"""The float32 error model grows with what the computation does, and float64 is fixed at 1e-10."""

import math

from parity.cases import Cost
from parity.tolerance import EPS, FLOAT64_SEMANTIC, SAFETY, bound


def test_float64_is_the_semantic_threshold():
    assert bound("float64", "parameters", 100, Cost(depth=10, reduction=1000)) == FLOAT64_SEMANTIC == 1e-10


def test_inputs_must_match_exactly():
    assert bound("float32", "inputs", 5) == 0.0


def test_float32_formula():
    c = Cost(depth=3, reduction=16)
    # forward: SAFETY * eps * sqrt(n) * depth * (step + 1)
    assert math.isclose(bound("float32", "forward", 0, c), SAFETY * EPS["float32"] * 4 * 3)
    assert math.isclose(bound("float32", "gradients", 9, c), SAFETY * EPS["float32"] * 4 * 7 * 10)


def test_bound_grows_with_depth_reduction_steps_and_growth():
    base = bound("float32", "parameters", 3, Cost(depth=2, reduction=4))
    assert bound("float32", "parameters", 3, Cost(depth=4, reduction=4)) > base
    assert bound("float32", "parameters", 3, Cost(depth=2, reduction=64)) > base
    assert bound("float32", "parameters", 30, Cost(depth=2, reduction=4)) > base
    assert bound("float32", "parameters", 3, Cost(depth=2, reduction=4, growth=1.5)) > base
