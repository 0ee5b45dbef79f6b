"""Non-finite values: the first NaN or inf of either run is reported (step, stage, tensor, element) in the
text and the JSON, and two runs NaN/inf at the same places are a verdict of their own ("nonfinite"),
not "exact", and fail (exit 1) -- issue 20."""

import json
import math
import os

import numpy as np
import pytest

from parity import Trace, compare
from parity.cases.case import Case, Data
from parity.report.jsonreport import comparison_dict
from parity.report.text import format_comparison
from parity.run.result import CaseResult, case_status, exit_code
from parity.trace.summary import summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMA = os.path.join(ROOT, "docs", "report-schema.json")


def trace(port, steps, dtype="float64"):
    t = Trace(manifest={"case": "nf", "port": port, "dtype": dtype})
    for s in steps:
        t.add_step(s)
    return t


def blown(nan_at=1, value=np.nan):
    """Three steps of a run whose gradients and parameters go non-finite at step ``nan_at``."""
    steps = []
    for i in range(3):
        w = np.array([1.0, 2.0, 3.0]) * 10.0**i
        g = w.copy()
        if i >= nan_at:
            g[1] = value
            w = np.array([value, value, 3.0])
        steps.append({"loss": {"loss": np.asarray(float(i))}, "gradients": {"w": g}, "parameters": {"w": w}})
    return steps


def test_both_runs_nan_at_the_same_place_is_not_exact():
    r = compare(trace("a", blown()), trace("b", blown()))
    assert r.verdict == "nonfinite" and not r.ok
    f = r.first_divergence
    assert (f.step, f.stage, f.name, f.kind) == (1, "gradients", "w", "nonfinite")
    for side, port in (("a", "a"), ("b", "b")):
        nf = r.nonfinite[side]
        assert (nf.step, nf.stage, nf.name, nf.port, nf.index, nf.count) == (1, "gradients", "w", port, (1,), 1)
        assert math.isnan(nf.value)
    # before the NaN the runs are exact: the verdict is the NaN's, not a difference
    assert r.worst[("loss", "loss")].verdict == "exact" and r.n_semantic == 0


def test_both_runs_inf_at_the_same_place():
    r = compare(trace("a", blown(value=np.inf)), trace("b", blown(value=np.inf)))
    assert r.verdict == "nonfinite" and math.isinf(r.nonfinite["a"].value)


def test_nan_on_one_side_only_is_semantic_and_names_that_sides_first_nan():
    r = compare(trace("a", blown(nan_at=5)), trace("b", blown(nan_at=2)))
    assert r.verdict == "semantic"
    assert "a" not in r.nonfinite
    nf = r.nonfinite["b"]
    assert (nf.step, nf.stage, nf.name, nf.index) == (2, "gradients", "w", (1,))
    f = r.first_divergence
    assert (f.step, f.stage, f.kind) == (2, "gradients", "semantic")


def test_nan_against_inf_is_semantic():
    r = compare(trace("a", blown()), trace("b", blown(value=np.inf)))
    assert r.verdict == "semantic" and math.isnan(r.nonfinite["a"].value) and math.isinf(r.nonfinite["b"].value)


def test_the_first_non_finite_value_is_the_earliest_step_then_stage():
    a = blown(nan_at=2)
    a[1]["parameters"]["w"] = np.array([1.0, np.inf, 1.0])  # step 1, parameters: before step 2's gradients
    b = [dict(s) for s in a]
    r = compare(trace("a", a), trace("b", b))
    nf = r.nonfinite["a"]
    assert (nf.step, nf.stage, nf.index) == (1, "parameters", (1,)) and r.verdict == "nonfinite"


def test_summaries_report_non_finite_values_too():
    sa = [{k: {n: summarize(v) for n, v in t.items()} for k, t in s.items()} for s in blown()]
    sb = [{k: {n: summarize(v) for n, v in t.items()} for k, t in s.items()} for s in blown()]
    r = compare(trace("a", sa), trace("b", sb))
    assert r.verdict == "nonfinite" and r.nonfinite["a"].step == 1 and r.nonfinite["a"].stage == "gradients"


def test_a_finite_run_reports_none_and_measuring_does_not_warn():
    with np.errstate(all="raise"):  # the careful path must not raise on NaN/inf
        r = compare(trace("a", blown(nan_at=9)), trace("b", blown(nan_at=9)))
        r2 = compare(trace("a", blown()), trace("b", blown()))
    assert r.nonfinite == {} and r.verdict == "exact" and r2.verdict == "nonfinite"


def nf_result():
    r = compare(trace("a", blown()), trace("b", blown()))
    case = Case(name="nf", module="(test)", title="both NaN", ports=("tf1", "torch"), params={}, data=Data("program"),
                steps=3, seed=0, dtypes=("float64",), tags=("program",))
    return r, CaseResult(case=case, comparisons=[r])


def test_a_nonfinite_verdict_fails_the_case_with_exit_1():
    r, result = nf_result()
    assert case_status(result) == "failed" and exit_code([case_status(result)]) == 1


def test_the_text_report_names_both_runs_first_nan():
    r, _ = nf_result()
    text = format_comparison(r)
    assert "nonfinite (both NaN at the same place)" in text
    assert "first non-finite value, reference a: step 1, gradients, w[1] = nan" in text
    assert "first non-finite value, port b: step 1, gradients, w[1] = nan" in text


def test_the_json_has_the_first_nan_of_each_run_and_is_valid():
    jsonschema = pytest.importorskip("jsonschema")
    r, _ = nf_result()
    d = json.loads(json.dumps(comparison_dict(r)))
    assert d["verdict"] == "nonfinite" and d["ok"] is False
    assert d["nonfinite"]["a"] == {"step": 1, "stage": "gradients", "tensor": "w", "port": "a", "index": [1],
                                   "value": "nan", "count": 1}
    assert d["first_divergence"]["kind"] == "nonfinite"
    schema = json.load(open(SCHEMA))
    jsonschema.validate(d, {"$defs": schema["$defs"], "$ref": "#/$defs/comparison"})
    finite = json.loads(json.dumps(comparison_dict(compare(trace("a", blown(9)), trace("b", blown(9))))))
    assert finite["nonfinite"] == {"a": None, "b": None}
    jsonschema.validate(finite, {"$defs": schema["$defs"], "$ref": "#/$defs/comparison"})


@pytest.mark.tf
@pytest.mark.torch
def test_parity_diff_of_two_programs_that_both_blow_up(tmp_path, capsys):
    # examples/zerograd/tf1_blowup.py and its torch port: lr 1e3 on a linear regression; in float32 the
    # loss overflows to inf at step 6 in both (measured), the same way
    pytest.importorskip("torch")
    from parity.cli.main import main

    out_json = str(tmp_path / "r.json")
    rc = main(["diff", os.path.join(ROOT, "examples", "zerograd", "tf1_blowup.py"),
               os.path.join(ROOT, "examples", "zerograd", "torch_blowup.py"), "--steps", "8", "--dtype", "float32",
               "--json", out_json])
    out, err = capsys.readouterr()
    assert rc == 1, err
    assert "NON-FINITE" in out and "first non-finite value, reference tf1: step" in out and "DIVERGE" in out
    data = json.load(open(out_json))
    cmp = data["cases"][0]["dtypes"][0]["comparisons"][0]
    assert cmp["verdict"] == "nonfinite"
    assert cmp["nonfinite"]["a"]["port"] == "tf1" and cmp["nonfinite"]["b"]["port"] == "torch"
    assert cmp["nonfinite"]["a"]["value"] in ("inf", "nan") and cmp["nonfinite"]["a"]["step"] >= 1
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.load(open(SCHEMA)))
