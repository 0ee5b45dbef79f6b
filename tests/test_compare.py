"""The comparison primitive: structure first, then values; the first divergence is well defined."""

import numpy as np
import pytest

from parity import Cost, ParityError, Trace, assert_match
from parity import compare
from parity.comparison.comparator import diff_arrays


def trace(port, steps, dtype="float64", case="c"):
    t = Trace(manifest={"case": case, "port": port, "dtype": dtype})
    for s in steps:
        t.add_step(s)
    return t


def test_identical_traces_are_exact():
    s = [{"loss": {"loss": 1.0}, "parameters": {"w": np.ones(3)}}]
    r = compare(trace("a", s), trace("b", s))
    assert r.verdict == "exact" and r.ok and r.first_divergence is None


def test_structure_issues_are_named_not_crashes():
    a = trace("a", [{"gradients": {"w": np.ones((2, 3)), "b": np.ones(3)}}])
    b = trace("b", [{"gradients": {"w": np.ones((3, 2)), "extra": np.ones(1)}}])
    r = compare(a, b)
    kinds = {(i.name, i.kind) for i in r.issues}
    assert kinds == {("w", "shape"), ("b", "missing in B"), ("extra", "missing in A")}
    assert r.verdict == "structure" and not r.ok
    assert r.first_divergence.kind == "structure"


def test_step_count_mismatch_is_a_structure_issue():
    s = {"loss": {"loss": 1.0}}
    r = compare(trace("a", [s, s]), trace("b", [s]))
    assert any(i.kind == "steps" for i in r.issues)


def test_first_divergence_is_earliest_step_then_stage_then_largest():
    a = trace("a", [
        {"loss": {"loss": 1.0}, "parameters": {"w": np.ones(2), "v": np.zeros(2)}},
        {"forward": {"y": np.ones(2)}, "loss": {"loss": 1.0}},
    ])
    b = trace("b", [
        {"loss": {"loss": 1.0}, "parameters": {"w": np.array([1, 1 + 1e-3]), "v": np.array([0.5, 0])}},
        {"forward": {"y": np.zeros(2)}, "loss": {"loss": 2.0}},
    ])
    first = compare(a, b).first_divergence
    # step 0 before step 1; within step 0 only parameters differ; w is off by 1e-3 of its
    # scale, v by all of it (scale = the larger magnitude of the two traces, 0.5): v first.
    assert (first.step, first.stage, first.name) == (0, "parameters", "v")


def test_worst_element_and_relative_error():
    max_abs, rel, idx, va, vb, scale = diff_arrays(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.5, 4.0]]))
    assert (max_abs, idx, va, vb, scale) == (0.5, (1, 0), 3.0, 3.5, 4.0)
    assert rel == 0.125  # 0.5 / 4: exact in binary


def test_nan_equal_only_where_both_nan():
    assert diff_arrays(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))[0] == 0.0
    assert diff_arrays(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))[0] == np.inf


def test_float64_threshold_is_1e_10_relative():
    a = trace("a", [{"loss": {"loss": 1.0}}])
    ok = trace("b", [{"loss": {"loss": 1.0 + 5e-11}}])
    bad = trace("b", [{"loss": {"loss": 1.0 + 2e-10}}])
    assert compare(a, ok).verdict == "rounding"
    assert compare(a, bad).verdict == "semantic"


def test_float32_uses_the_error_model():
    eps = 2.0**-23
    a = trace("a", [{"forward": {"y": np.float32(1.0)}}], "float32")
    # depth 1, reduction 1: the bound is 4 eps; 2 eps is rounding, 8 eps is not.
    assert compare(a, trace("b", [{"forward": {"y": np.float32(1 + 2 * eps)}}], "float32"), cost=Cost()).ok
    assert not compare(a, trace("b", [{"forward": {"y": np.float32(1 + 8 * eps)}}], "float32"), cost=Cost()).ok


def test_inputs_must_be_identical():
    a = trace("a", [{"inputs": {"x": np.ones(2)}}])
    b = trace("b", [{"inputs": {"x": np.ones(2) + 1e-15}}])
    assert compare(a, b).verdict == "semantic"


def test_scale_keeps_the_largest_magnitude_so_far():
    # A loss that converges to ~0: its later rounding error is judged against its earlier size.
    a = trace("a", [{"loss": {"loss": 1.0}}, {"loss": {"loss": 1e-9}}])
    b = trace("b", [{"loss": {"loss": 1.0}}, {"loss": {"loss": 1e-9 + 1e-17}}])
    assert compare(a, b).ok


def test_different_cases_cannot_be_compared():
    with pytest.raises(ParityError, match="different cases"):
        compare(trace("a", [], case="x"), trace("b", [], case="y"))


def test_assert_match_names_the_first_divergence():
    a = trace("a", [{"loss": {"loss": 1.0}}])
    b = trace("b", [{"loss": {"loss": 2.0}}])
    with pytest.raises(ParityError, match="step 0, loss, loss"):
        assert_match(a, b)


def test_a_stage_only_one_port_reports_is_skipped_and_said():
    a = trace("a", [{"forward": {"y": np.ones(2)}, "loss": {"loss": 1.0}}])
    b = trace("b", [{"loss": {"loss": 1.0}}])
    r = compare(a, b)
    assert r.ok and r.skipped == [("forward", "a")]
