"""A pitfall's wrong and right cases in one run (:func:`parity.run.runner.run_pitfall`): the reference built and
stepped once, each case keeping its own window, health and drift of it. Each result must hold exactly what its
own ``run_case`` returns: every comparison, window, health series and manifest, bit for bit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("torch")

from parity.cases.registry import get_case  # noqa: E402
from parity.pitfalls.registry import all_pitfalls  # noqa: E402
from parity.run.runner import _pairable, run_case, run_pitfall  # noqa: E402


def _plain(x, seen=None):
    """A comparable form of a result: dataclasses and objects by their fields, arrays by dtype, shape and bytes."""
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        return ("array", str(x.dtype), np.shape(x), np.asarray(x).tobytes())
    if isinstance(x, float) and x != x:
        return ("nan",)
    if isinstance(x, dict) or type(x).__name__ == "mappingproxy":
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return (type(x).__name__, {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)})
    if hasattr(x, "__dict__") and not callable(x):
        return (type(x).__name__, {k: _plain(v) for k, v in vars(x).items() if not k.startswith("_")})
    return x


def _result(res):
    """Everything a CaseResult holds but the times."""
    return {
        "case": res.case.name,
        "status": res.status,
        "errors": {d: {p: str(e) for p, e in per.items()} for d, per in res.errors.items()},
        "comparisons": _plain(res.comparisons),
        "traces": {d: {p: _plain(w) for p, w in per.items()} for d, per in res.traces.items()},
        "order": {d: list(per) for d, per in res.traces.items()},
    }


def _strip_seconds(x):
    if isinstance(x, dict):
        return {k: _strip_seconds(v) for k, v in x.items() if k != "seconds"}
    if isinstance(x, (list, tuple)):
        return [_strip_seconds(v) for v in x]
    return x


@pytest.mark.parametrize("pitfall, workers", [
    ("adam-epsilon", False),           # a TF1 reference (its conditioning run), an optimizer mistake
    ("sgd-momentum-lr-change", True),  # a TF2 reference, in the workers
    ("bn-momentum", False),            # state (moving statistics) besides the parameters
])
def test_one_run_gives_each_case_what_its_own_run_gives(pitfall, workers):
    p = next(p for p in all_pitfalls() if p.name == pitfall)
    wrong, right = get_case(p.wrong_case), get_case(p.right_case)
    assert _pairable(wrong, right)
    dtypes = ("float64", "float32")
    got_w, got_r = run_pitfall(wrong, right, dtypes=dtypes, workers=workers)
    want_w, want_r = run_case(wrong, dtypes=dtypes, workers=workers), run_case(right, dtypes=dtypes, workers=workers)
    assert want_w.status == "passed" and any(not c.ok for c in want_w.comparisons)  # the wrong port is caught
    for got, want in ((got_w, want_w), (got_r, want_r)):
        assert got.case is want.case
        assert _strip_seconds(_result(got)) == _strip_seconds(_result(want))


def test_cases_that_differ_in_more_than_their_port_run_apart():
    p = next(p for p in all_pitfalls() if p.name == "tf32-emulated")  # its wrong case runs in float32 only
    wrong, right = get_case(p.wrong_case), get_case(p.right_case)
    other = dataclasses.replace(right, seed=right.seed + 1)
    assert not _pairable(wrong, other)  # other data: not the same reference run
    assert not _pairable(wrong, dataclasses.replace(right, options=dict(right.options, lr=1.0)))
    got_w, got_r = run_pitfall(wrong, right, dtypes=("float64", "float32"))
    assert list(got_w.traces) == ["float32"] and list(got_r.traces) == ["float64", "float32"]
