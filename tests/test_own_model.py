"""`parity diff` / compare_programs on plain torch programs: capture, mapping, planted mistakes.

The TF-vs-torch pairs are in tests/test_own_model_tf*.py.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("torch")

from parity import STAGES, ParityError  # noqa: E402
from parity.pitfalls.diagnose import diagnose  # noqa: E402
from parity.portkit.layout import flatten_rows_to_torch  # noqa: E402
from parity.program.mapping import Mapping_, apply_ops, auto_map, invert_ops, load_mapping, save_mapping  # noqa: E402
from parity.portkit.program import ParamSpec  # noqa: E402
from parity.program.prepare import compare_programs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")
FIX = os.path.join(ROOT, "tests", "fixtures", "programs")


def ex(*parts):
    return os.path.join(EX, *parts)


def fix(name):
    return os.path.join(FIX, name)


def first(result, dtype="float64"):
    c = next(c for c in result.comparisons if c.dtype == dtype)
    return c, c.first_divergence


def named(result, dtype="float64"):
    c = next(c for c in result.comparisons if c.dtype == dtype)
    return [d.pitfall for d in diagnose(result.case, c, result.traces[dtype])]


# -- mapping (numpy) ------------------------------------------------------------------------------------
def test_layout_ops_are_inverse_permutations():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(3 * 4 * 5, 7))
    for ops in (["T"], ["oihw>hwio"], ["T", "rows_chw>hwc:5,3,4"], ["rows_hwc>chw:5,3,4"]):
        x = rng.normal(size=(3, 3, 2, 4)) if ops == ["oihw>hwio"] else (k.T if ops[0] == "T" else k)
        assert np.array_equal(apply_ops(invert_ops(ops), apply_ops(ops, x)), x)
    # the rows op agrees with parity.portkit.layout's flatten permutation (c, h, w) = (5, 3, 4)
    assert np.array_equal(apply_ops(["rows_hwc>chw:5,3,4"], k), flatten_rows_to_torch(k, 3, 4, 5))


def _spec(name, shape, kind, trainable=True):
    return ParamSpec(name, shape, kind, name.rpartition("/")[0] or name, trainable)


def test_auto_map_pairs_by_order_within_shape_and_kind():
    ref = [_spec("d1/kernel", (4, 8), "dense_kernel"), _spec("d1/bias", (8,), "bias"),
           _spec("d2/kernel", (8, 8), "dense_kernel"), _spec("d2/bias", (8,), "bias")]
    port = [_spec("a.weight", (8, 4), "dense_kernel"), _spec("a.bias", (8,), "bias"),
            _spec("b.weight", (8, 8), "dense_kernel"), _spec("b.bias", (8,), "bias")]
    m = auto_map(ref, "tf1", port, "torch")
    assert [(e.reference, e.port) for e in m.params] == [("d1/kernel", "a.weight"), ("d1/bias", "a.bias"),
                                                         ("d2/kernel", "b.weight"), ("d2/bias", "b.bias")]
    assert m.params[0].port_ops == ["T"]
    w = m.port_weights({"d1/kernel": np.arange(32.0).reshape(4, 8), "d1/bias": np.zeros(8), "d2/kernel": np.eye(8), "d2/bias": np.ones(8)})
    assert np.array_equal(w["a.weight"], np.arange(32.0).reshape(4, 8).T)


def test_auto_map_refuses_what_it_cannot_decide():
    ref = [_spec("k", (4, 8), "dense_kernel"), _spec("b", (8,), "bias")]
    port = [_spec("w", (8, 4), "dense_kernel"), _spec("b0", (8,), "bias"), _spec("b1", (8,), "bias")]
    with pytest.raises(ParityError) as e:
        auto_map(ref, "tf1", port, "torch")
    msg = str(e.value)
    assert "\n" not in msg and "b0" in msg and "b1" in msg and "k [4, 8]" in msg and "unresolved" in msg
    with pytest.raises(ParityError, match="different sizes"):
        auto_map(ref, "tf1", [_spec("w", (16, 4), "dense_kernel"), _spec("b0", (16,), "bias")], "torch")


def test_mapping_json_round_trip(tmp_path):
    ref = [_spec("c/kernel", (3, 3, 2, 4), "conv_kernel")]
    port = [_spec("c.weight", (4, 2, 3, 3), "conv_kernel")]
    m = auto_map(ref, "tf1", port, "torch")
    path = save_mapping(m, str(tmp_path / "m.json"))
    back = load_mapping(path)
    assert back.params[0].port_ops == ["oihw>hwio"] and back.params[0].shape == (3, 3, 2, 4)
    (tmp_path / "bad.json").write_text('{"format": 1, "params": [{"port": "x"}]}')
    with pytest.raises(ParityError, match="reference"):
        load_mapping(str(tmp_path / "bad.json"))


# -- the torch adapter ------------------------------------------------------------------------------------
def test_flatten_order_is_detected_and_mapped():
    # Same network, one flattening NCHW in (c, h, w) order, the other permuting to NHWC first; the
    # second starts from different random weights: agreement proves the rows were permuted right.
    r = compare_programs(fix("tiny_convnet.py"), fix("tiny_convnet_hwc.py"), steps=3)
    ops = {e.port: e.port_ops for e in r.mapping.params}
    ref_ops = {e.reference: e.reference_ops for e in r.mapping.params}
    assert ops["fc.weight"] == ["T"] and ref_ops["fc.weight"] == ["T", "rows_chw>hwc:3,4,5"]
    assert r.passed, [c.first_divergence for c in r.comparisons]
    # float64: both compute the same sums in different orders; 1e-12 is ~1e4 eps64, ample for a 60-term dot product
    f64 = next(c for c in r.comparisons if c.dtype == "float64")
    assert f64.worst_rel() < 1e-12


def test_every_stage_the_program_has_is_captured():
    r = compare_programs(fix("tiny_convnet.py"), fix("tiny_convnet.py"), steps=2, dtypes=("float64",))
    trace = r.traces["float64"]["torch"]
    stages = {s for st in trace.steps for s in st}
    assert stages == {"inputs", "forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters", "slots"}
    assert set(trace.steps[0]["slots"]) == {f"{n}/momentum" for n in ("conv.weight", "conv.bias", "fc.weight", "fc.bias")}
    # F.relu: functional calls are recorded like modules (issue 24 item 4); its output is what the flatten reads
    assert list(trace.steps[0]["forward"]) == ["conv", "F.relu", "drop", "fc"]
    assert trace.steps[0]["forward"]["conv"].shape == (5, 4, 5, 3)  # NHWC, the canonical layout
    assert all(s in STAGES for s in stages)


def test_dropout_is_driven_by_parity_masks():
    r = compare_programs(fix("tiny_convnet.py"), fix("tiny_convnet.py"), steps=2, dtypes=("float64",))
    run = r.program_run
    mask = run.batches[0]["__dropout_mask__/0"]
    assert mask.shape == (5, 60) and 0 < mask.mean() < 1
    t = r.traces["float64"]["torch"].steps[0]["forward"]
    # where the mask is 0 the dropout output is 0; elsewhere it is the input / keep (keep 0.5)
    assert np.all(t["drop"][mask == 0] == 0)
    relu = np.maximum(t["conv"], 0).reshape(5, -1)  # (h, w, c) order, like the canonical flatten
    np.testing.assert_allclose(t["drop"][mask == 1], (relu / 0.5)[mask == 1], rtol=1e-15)  # exact up to one rounding


# -- the examples: each torch port against itself (the pipeline), then the planted mistakes ---------------
@pytest.mark.parametrize("path", ["seed000/torch_encoder.py", "seed002/torch_mlp.py", "seed004/torch_minimize.py"])
def test_torch_examples_agree_with_themselves(path):
    r = compare_programs(ex(path), ex(path), steps=3)
    assert r.passed
    assert all(c.verdict == "exact" for c in r.comparisons)  # same code, same numbers: bit for bit


def test_planted_zero_grad_missing_is_caught_at_step_1_gradients():
    r = compare_programs(ex("seed002", "torch_mlp.py"), ex("mistakes", "torch_mlp_no_zero_grad.py"), steps=3, dtypes=("float64",))
    c, d = first(r)
    assert (d.step, d.stage) == (1, "gradients")
    assert named(r)[0] == "zero-grad"


def test_planted_eval_mode_is_caught_at_step_0_forward():
    r = compare_programs(ex("seed003", "torch_bn_convnet.py"), ex("mistakes", "torch_bn_convnet_eval.py"), steps=2, dtypes=("float64",))
    c, d = first(r)
    assert (d.step, d.stage, d.name) == (0, "forward", "1")  # "1" = the BatchNorm2d of the Sequential
    assert named(r)[0] == "torch-eval-mode"


@pytest.mark.slow
def test_planted_adam_epsilon_is_caught_at_step_0_parameters():
    r = compare_programs(ex("seed001", "torch_convnet.py"), ex("mistakes", "torch_convnet_adam_eps.py"), steps=2, dtypes=("float64",))
    c, d = first(r)
    assert (d.step, d.stage) == (0, "parameters")
    names = named(r)
    # once "nesterov" (update ratio 1 + 7e-10) came first: it now needs momentum SGD by the run's settings
    assert names[:1] == ["adam-epsilon"] and "nesterov" not in names, names


@pytest.mark.slow
def test_planted_zero_grad_in_the_seed001_port():
    r = compare_programs(ex("seed001", "torch_convnet.py"), ex("mistakes", "torch_convnet_no_zero_grad.py"), steps=2, dtypes=("float64",))
    c, d = first(r)
    assert (d.step, d.stage) == (1, "gradients")
    assert named(r)[0] == "zero-grad"


def test_planted_flatten_rows_not_permuted_in_the_mapping_file(tmp_path):
    # The automatic mapping permutes a Linear's rows after a (c, h, w) flatten; a hand-edited
    # mapping without that permutation is the "flatten rows not permuted" mistake.
    ok = compare_programs(fix("tiny_convnet.py"), fix("tiny_convnet_hwc.py"), steps=1, dtypes=("float64",),
                          save_mapping=str(tmp_path / "m.json"))
    assert ok.passed
    m = load_mapping(str(tmp_path / "m.json"))
    for e in m.params:
        e.reference_ops = [o for o in e.reference_ops if not o.startswith("rows_")]
    save_mapping(m, str(tmp_path / "wrong.json"))
    r = compare_programs(fix("tiny_convnet.py"), fix("tiny_convnet_hwc.py"), steps=2, dtypes=("float64",), mapping=str(tmp_path / "wrong.json"))
    c, d = first(r)
    assert (d.step, d.stage, d.name) == (0, "forward", "fc")
    return r


def test_planted_flatten_rows_not_permuted_is_named(tmp_path):
    # conv -> ReLU -> flatten -> dropout -> fc: the prediction goes through the ReLU and the (shared-mask)
    # dropout both ports recorded alike ("drop"), not only from a 4-D map feeding the Dense directly
    r = test_planted_flatten_rows_not_permuted_in_the_mapping_file(tmp_path)
    named_ = named(r)
    assert named_[:1] == ["flatten-order"], named_


def test_a_mapping_object_is_accepted():
    r = compare_programs(fix("tiny_mlp.py"), fix("tiny_mlp.py"), steps=1, dtypes=("float64",))
    again = compare_programs(fix("tiny_mlp.py"), fix("tiny_mlp.py"), steps=1, dtypes=("float64",),
                             mapping=Mapping_.from_json(r.mapping.to_json()))
    assert again.passed
