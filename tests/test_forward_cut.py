"""Forward outputs compared at the same cut: torch's functional calls recorded like modules, outputs
paired by structure (kind, shape, call order) with the probe's values only confirming, every output
left out given a reason, the mapping file's forward edits, and RNN outputs recorded on both sides.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.errors import ParityError
from parity.program.outputs import apply_forward_edits, pair_outputs, unpaired_notes

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def ex(*parts):
    return os.path.join(EX, *parts)


# -- the pairing itself (numpy only) ---------------------------------------------------------------
def _acts(rng, *shapes):
    return [rng.normal(size=s) for s in shapes]


def test_a_post_relu_output_never_pairs_with_a_pre_relu_one():
    rng = np.random.default_rng(0)
    pre, = _acts(rng, (4, 6))
    post = np.maximum(pre, 0)
    # TF: the ReLU op's output; torch: the Linear module's (pre-ReLU) output, then F.relu's
    ref = {"dense/BiasAdd": pre, "dense/Relu": post}
    port = {"fc": pre, "F.relu": post}
    p = pair_outputs(ref, port, {"dense/BiasAdd": "linear", "dense/Relu": "activation"},
                     {"fc": "linear", "F.relu": "activation"})
    assert p.pairs == [("dense/BiasAdd", "fc"), ("dense/Relu", "F.relu")]
    assert p.confirmed == set(p.pairs)
    # the port without a recorded ReLU: its Linear pairs with the linear, the ReLU stays unpaired, with a reason
    p = pair_outputs(ref, {"fc": pre}, {"dense/BiasAdd": "linear", "dense/Relu": "activation"}, {"fc": "linear"})
    assert p.pairs == [("dense/BiasAdd", "fc")]
    assert p.reasons == {"reference dense/Relu": "the port records no activation output"}


def test_pre_and_post_dropout_outputs_are_not_paired_one_slot_off():
    rng = np.random.default_rng(1)
    h, = _acts(rng, (4, 6))
    dropped = h * (rng.random((4, 6)) < 0.5) / 0.5
    ref = {"Relu": h, "dropout": dropped, "out": h[:, :3]}
    port = {"dropout": dropped, "out": h[:, :3] + 1.0}  # the port records no ReLU; its last layer differs
    p = pair_outputs(ref, port, {"Relu": "activation", "dropout": "dropout", "out": "linear"},
                     {"dropout": "dropout", "out": "linear"})
    assert p.pairs == [("dropout", "dropout"), ("out", "out")]
    assert ("out", "out") not in p.confirmed  # a structural pair that differs: a divergence, kept


def test_values_choose_between_structural_candidates_but_never_make_a_pair():
    rng = np.random.default_rng(2)
    xw, adj_xw = _acts(rng, (5, 4), (5, 4))
    # TF: x @ W, then adj @ (x @ W); a torch module records only its output adj @ (x @ W)
    ref = {"MatMul": xw, "MatMul_1": adj_xw}
    p = pair_outputs(ref, {"gc1": adj_xw}, {"MatMul": "linear", "MatMul_1": "linear"}, {"gc1": "linear"})
    assert p.pairs == [("MatMul_1", "gc1")]
    assert "reference MatMul" in p.reasons
    # a custom module (kind other) pairs only by value; an activation never pairs with a linear output
    p = pair_outputs({"MatMul": xw}, {"custom": xw + 1}, {"MatMul": "linear"}, {"custom": "other"})
    assert p.pairs == []
    p = pair_outputs({"MatMul": xw}, {"F.relu": xw}, {"MatMul": "linear"}, {"F.relu": "activation"})
    assert p.pairs == []


def test_nothing_paired_says_why_in_a_note():
    rng = np.random.default_rng(3)
    a, b = _acts(rng, (4, 3), (4, 5))
    p = pair_outputs({"MatMul": a}, {"pool": b}, {"MatMul": "linear"}, {"pool": "pool"})
    (note,) = unpaired_notes(p, {"MatMul": a}, {"pool": b}, {"MatMul": "linear"}, {"pool": "pool"})
    assert note.startswith("no layer output compared") and "MatMul (linear [4, 3])" in note and "pool (pool [4, 5])" in note


def test_kth_conv_pairs_with_kth_conv_when_a_padding_changes_the_shapes():
    rng = np.random.default_rng(4)
    # reference: conv same (8x8), conv valid (6x6), pool (3x3); port: conv valid (6x6), conv pad 1 (6x6), pool
    r1, r2, r3 = _acts(rng, (2, 8, 8, 4), (2, 6, 6, 4), (2, 3, 3, 4))
    p1, p2, p3 = _acts(rng, (2, 6, 6, 4), (2, 6, 6, 4), (2, 3, 3, 4))
    ref, port = {"conv": r1, "conv_1": r2, "pool": r3}, {"0": p1, "2": p2, "4": p3}
    kinds = ({"conv": "conv", "conv_1": "conv", "pool": "pool"}, {"0": "conv", "2": "conv", "4": "pool"})
    p = pair_outputs(ref, port, *kinds)
    # not shifted by shape (conv_1 <-> 0 would blame the second conv for the first one's padding)
    assert p.pairs == [("conv", "0"), ("conv_1", "2"), ("pool", "4")]
    assert p.reshaped == [("conv", "0", "conv", 1)]
    notes = unpaired_notes(p, ref, port, *kinds)
    assert notes == ["layer output shapes differ: reference conv [2, 8, 8, 4] vs port 0 [2, 6, 6, 4]: the 1st conv outputs "
                     "differ in shape (padding or stride differ, or the layers before); paired in call order (the k-th of a "
                     "kind with the k-th) and reported as a shape difference there"]
    # an extra conv on one side still leaves the others paired at their own shapes (equal shapes preferred)
    p = pair_outputs({"conv": r2, "pool": r3}, port, {"conv": "conv", "pool": "pool"}, kinds[1])
    assert p.pairs in ([("conv", "0"), ("pool", "4")], [("conv", "2"), ("pool", "4")]) and p.reshaped == []
    # other rank, other batch, or a kind parity does not know: never paired at a different shape
    assert pair_outputs({"a": r1}, {"b": p1[0]}, {"a": "conv"}, {"b": "conv"}).pairs == []
    assert pair_outputs({"a": r1}, {"b": r1[:1]}, {"a": "conv"}, {"b": "conv"}).pairs == []
    assert pair_outputs({"a": r1}, {"b": p1}, {"a": "other"}, {"b": "other"}).pairs == []


def test_forward_edits_drop_add_and_re_pair_and_list_the_names():
    pairs = [("a", "x"), ("b", "y")]
    assert apply_forward_edits(pairs, [{"drop": "a"}], ["a", "b", "c"], ["x", "y", "z"]) == [("b", "y")]
    assert apply_forward_edits(pairs, [{"reference": "c", "port": "z"}], ["a", "b", "c"], ["x", "y", "z"]) == pairs + [("c", "z")]
    assert apply_forward_edits(pairs, [["a", "y"]], ["a", "b", "c"], ["x", "y", "z"]) == [("a", "y")]
    with pytest.raises(ParityError) as err:
        apply_forward_edits(pairs, [{"drop": "nope"}], ["a", "b"], ["x", "y"])
    msg = str(err.value)
    assert "nope" in msg and '{"drop": NAME}' in msg and "reference outputs: a, b" in msg and "port outputs: x, y" in msg
    with pytest.raises(ParityError, match="unknown entry"):
        apply_forward_edits(pairs, [{"rename": "a"}], ["a", "b"], ["x", "y"])


# -- real programs -----------------------------------------------------------------------------------
pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.prepare import compare_programs  # noqa: E402


def _first(result):
    c = next(c for c in result.comparisons if c.dtype == "float64")
    return c


def test_tf1_relu_op_against_torch_f_relu_agrees_with_every_output_compared():
    r = compare_programs(ex("cuts", "tf1_convnet.py"), ex("cuts", "torch_convnet.py"), steps=2, dtypes=("float64",))
    assert r.mapping.forward == [("BiasAdd", "conv"), ("Relu", "F.relu"), ("MaxPool", "F.max_pool2d"), ("add", "dense")]
    c = _first(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert "forward" in {d.stage for d in c.diffs}
    # float64: a faithful port agrees to ~1e-15 relative; 1e-10 is the harness's float64 semantic line
    assert c.worst_rel() < 1e-10


def test_a_wrong_activation_diverges_at_the_forward_stage_at_that_layer():
    r = compare_programs(ex("cuts", "tf1_convnet.py"), ex("cuts", "torch_convnet_elu.py"), steps=2, dtypes=("float64",))
    d = _first(r).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and "Relu" in d.describe()


def test_graph_network_adj_matmul_cut_agrees_and_a_missing_adj_diverges_in_its_layer():
    r = compare_programs(ex("dropout", "tf1_gcn_sparse_dropout.py"), ex("dropout", "torch_gcn.py"), steps=2,
                         dtypes=("float64",))
    assert r.mapping.forward == [("gc1/Floor", "F.dropout"), ("gc1/MatMul", "gc1/F.mm"), ("gc1/add_1", "gc1/F.mm#2"),
                                 ("gc1/Relu", "F.relu"), ("gc2/dropout", "F.dropout#2"), ("gc2/MatMul", "gc2/F.mm"),
                                 ("gc2/add", "gc2/F.mm#2")]
    c = _first(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # float64 semantic line (see above)
    wrong = compare_programs(ex("dropout", "tf1_gcn_sparse_dropout.py"), ex("dropout", "torch_gcn_no_adj.py"), steps=2,
                             dtypes=("float64",))
    d = _first(wrong).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and "gc1/" in d.describe()
    # the reference's adj matmul has no partner in the wrong port: said, with a reason
    assert any("reference gc1/add_1 (" in n for n in wrong.notes)


def test_rnn_sequence_output_and_final_state_are_recorded_and_paired_on_both_sides(monkeypatch):
    from parity.program.load import capture, load_program
    from parity.program.outputs import kinds_of

    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell under TF 2.21
    # float32: a TF1 dynamic_rnn graph is not rebuilt in float64 yet (another task); recording is dtype-blind
    R = capture(load_program(ex("cuts", "tf1_lstm.py")), "float32")
    P = capture(load_program(ex("cuts", "torch_lstm.py")), "float32")
    try:
        batch = next(iter(R.data_source()()))
        ar, ap = R.forward(batch, {}), P.forward(batch, {})
        kr, kp = kinds_of(R), kinds_of(P)
        assert [(k, kr[k], v.shape) for k, v in ar.items()] == [
            ("rnn", "rnn", (4, 5, 8)), ("rnn/c", "rnn_cell", (4, 8)), ("rnn/h", "rnn_state", (4, 8)), ("add", "linear", (4, 4))]
        assert [(k, kp[k], v.shape) for k, v in ap.items()] == [
            ("lstm", "rnn", (4, 5, 8)), ("lstm/c", "rnn_cell", (4, 8)), ("lstm/h", "rnn_state", (4, 8)), ("dense", "linear", (4, 4))]
        # the final h is the sequence output's last step on each side
        assert np.array_equal(ar["rnn/h"], ar["rnn"][:, -1]) and np.array_equal(ap["lstm/h"], ap["lstm"][:, -1])
        assert pair_outputs(ar, ap, kr, kp).pairs == [("rnn", "lstm"), ("rnn/c", "lstm/c"), ("rnn/h", "lstm/h"), ("add", "dense")]
    finally:
        R.close()
        P.close()


def test_keras_activation_layer_and_activation_argument_pair_with_torch_relu_modules():
    # Keras: conv, Activation('relu'), Conv2D(activation='relu'), Dense(activation='relu'); torch: nn.Sequential
    # with nn.ReLU modules. An Activation layer's input is not a cut of its own (it is conv's output), and a
    # layer's pre-activation output pairs with the torch conv/linear module, its output with the nn.ReLU
    r = compare_programs(ex("cuts", "keras_activation_layers.py"), ex("cuts", "torch_sequential_relu.py"), steps=2,
                         dtypes=("float64",))
    assert r.mapping.forward == [("conv", "0"), ("act", "1"), ("conv_2/pre_activation", "2"), ("conv_2", "3"),
                                 ("pool", "4"), ("flatten", "5"), ("dense/pre_activation", "6"), ("dense", "7"),
                                 ("logits", "8")]
    c = _first(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # float64 semantic line (see above)


def test_first_conv_padding_difference_is_reported_at_the_first_conv():
    r = compare_programs(ex("cuts", "keras_activation_layers.py"), ex("cuts", "torch_sequential_relu_nopad.py"), steps=2,
                         dtypes=("float64",))
    assert r.mapping.forward[:3] == [("conv", "0"), ("act", "1"), ("conv_2/pre_activation", "2")]
    d = _first(r).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and "conv" in d.describe()
    assert "shape" in d.describe() and "[4, 8, 8, 8]" in d.describe() and "[4, 6, 6, 8]" in d.describe()
    assert any(n.startswith("layer output shapes differ: reference conv [4, 8, 8, 8] vs port 0 [4, 6, 6, 8]: the 1st conv")
               for n in r.notes)
    # after the first two maps the shapes agree again: those outputs are paired and compared by value
    assert ("conv_2/pre_activation", "2") in r.mapping.forward and ("logits", "8") in r.mapping.forward


def test_keras_cuts_pair_by_structure_alone_when_no_value_confirms():
    from parity.program.load import capture, load_program
    from parity.program.outputs import kinds_of

    R = capture(load_program(ex("cuts", "keras_activation_layers.py")), "float64")
    P = capture(load_program(ex("cuts", "torch_sequential_relu.py")), "float64")
    try:
        batch = next(iter(R.data_source()()))
        ar, ap = R.forward(batch, {}), P.forward(batch, {})  # each from its own weights: no value agrees
        kr, kp = kinds_of(R), kinds_of(P)
        assert [(k, kr[k]) for k in ar] == [
            ("conv", "conv"), ("act", "activation"), ("conv_2/pre_activation", "conv"), ("conv_2", "activation"),
            ("pool", "pool"), ("flatten", "reshape"), ("dense/pre_activation", "linear"), ("dense", "activation"),
            ("logits", "linear")]
        p = pair_outputs(ar, ap, kr, kp)
        assert p.confirmed == set()
        assert p.pairs == [("conv", "0"), ("act", "1"), ("conv_2/pre_activation", "2"), ("conv_2", "3"), ("pool", "4"),
                           ("flatten", "5"), ("dense/pre_activation", "6"), ("dense", "7"), ("logits", "8")]
    finally:
        R.close()
        P.close()
