"""The float32 error model grows with what the computation does, and float64 is fixed at 1e-10."""

import math

from parity.cases.case import Cost
from parity.comparison.tolerance import EPS, FLOAT64_SEMANTIC, SAFETY, bound


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


def test_slots_hold_squared_gradients():
    c = Cost(depth=2, reduction=9)
    # Adam's v is a squared gradient: twice the gradient's passes, plus its own update
    assert math.isclose(bound("float32", "slots", 0, c), SAFETY * EPS["float32"] * 3 * (2 * 5 + 1))


def test_condition_scales_the_loss_and_after_not_the_forward():
    plain, cond = Cost(depth=2), Cost(depth=2, condition=4.0)
    assert bound("float32", "forward", 3, cond) == bound("float32", "forward", 3, plain)
    for stage in ("loss", "gradients", "parameters", "slots"):
        assert math.isclose(bound("float32", stage, 3, cond), 4 * bound("float32", stage, 3, plain))
