"""The abuse probe (issue 22) under pytest: each case of tests/abuse_probe/cases.py holds the command line's contract.

The cases marked ``fast`` (one or two per category, ~1-2 s each) run in the default suite; the
whole table (160 cases, a few minutes) is marked ``slow``. The same table runs as a script,
one row per case and a total: ``python -m tests.abuse_probe.run``.
"""

from __future__ import annotations

import pytest

from abuse_probe.cases import CASES, by_name
from abuse_probe.probe import judge, run_probe
from abuse_probe.run import make_fixtures, skipped


@pytest.fixture(scope="module")
def fx():
    return make_fixtures()


def test_the_table_has_every_category_and_at_least_102_cases():
    by_name()  # names are unique
    categories = {p.category for p in CASES}
    assert len(CASES) >= 102
    assert categories == {"args", "inputs", "mapping", "traces", "outputs", "faults", "signals", "concurrency",
                          "planted"}
    assert {p.category for p in CASES if p.fast} >= {"args", "inputs", "traces", "outputs", "faults", "planted"}
    assert all(4 not in p.expect for p in CASES)  # exit 4 is parity's own bug: never the contract


def _params(fast_only: bool):
    # a known break (its fix is in another file, asked for) is a strict xfail: its fix turns it into a failure
    # here until `known` is removed from its case
    return [pytest.param(p, id=p.name, marks=[*(() if p.fast else [pytest.mark.slow]),
                                             *([pytest.mark.xfail(reason=p.known, strict=True)] if p.known else [])])
            for p in CASES if p.fast or not fast_only]


@pytest.mark.parametrize("probe", _params(fast_only=False))
def test_the_contract_holds(probe, fx, tmp_path):
    why = skipped(probe)
    if why:
        pytest.skip(why)
    outcome = run_probe(probe, tmp_path / "case", fx)
    broke = judge(probe, outcome)
    assert broke is None, f"{probe.name}: expected exit {probe.expected()}, got {outcome.rc}: {broke}"


def test_the_judge_catches_a_false_pass_and_a_traceback(tmp_path):
    # the probe must be able to fail: exit 0 without a report, a traceback, exit 4
    from abuse_probe.probe import Outcome, Probe

    p = Probe("x", "faults", ("check", "c"), (3,))
    assert judge(p, Outcome(0, "", "", 0.0, tmp_path))
    assert judge(p, Outcome(3, "", "Traceback (most recent call last):\n  x\n", 0.0, tmp_path))
    assert judge(p, Outcome(4, "", "parity: error: internal error", 0.0, tmp_path))
    assert judge(p, Outcome(3, "report", "parity: error: the port crashed", 0.0, tmp_path)) is None
    ok = Probe("y", "traces", ("compare", "a", "b"), (0,))
    assert judge(ok, Outcome(0, "", "", 0.0, tmp_path)) == "exit 0 without a report on stdout"
