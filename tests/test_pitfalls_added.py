"""The catalogue entries added for what real programs met (issue 23 item 2): facts-first naming keeps each
new name to its preconditions, a shape difference is named only where a conv's padding explains it, and the
TF behaviour behind ``clip-norm-sparse-rows`` (``tf.global_norm`` over an ``IndexedSlices`` squares each
looked-up row as it is, a repeated id once per occurrence) is checked against TF itself.

The catalogue run itself (every wrong port named first, every right port clean, the matrix diagonal) is
tests/test_pitfalls.py's, which covers these entries through the registry.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity.cases.registry import get_case
from parity.pitfalls import all_pitfalls, explain
from parity.pitfalls.diagnose import diagnose
from parity.pitfalls.facts import _name_of, allowed
from parity.run.runner import run_case

ADDED = ("optimizer-class", "optimizer-rho", "optimizer-epsilon", "adadelta-lr-default", "rmsprop-centered", "adam-betas",
         "weight-decay", "dropout-kind", "dropout-site-missing", "conv-padding", "embedding-padding-idx",
         "clip-norm-sparse-rows", "max-norm-missing", "loss-on-probabilities", "lstm-double-bias")


def test_the_added_entries_are_registered_with_cases_and_an_explanation():
    names = {p.name for p in all_pitfalls()}
    assert set(ADDED) <= names
    for n in ADDED:
        assert get_case(f"pitfall_{n.replace('-', '_')}_wrong").expect == "diverge"
        assert "Fix:" in explain(n)


def _facts(ref: dict, port: dict) -> dict:
    keys = set(ref) & set(port)
    return {"reference": ref, "port": port, "differs": {k: (ref[k], port[k]) for k in keys if ref[k] != port[k]}}


def test_optimizer_names_keep_to_their_optimizer_class_and_to_facts_that_differ():
    adadelta = _facts({"optimizer": "adadelta", "rho": 0.95}, {"optimizer": "adadelta", "rho": 0.95})
    # no Adam name for an Adadelta; no rho name where both rhos are equal
    assert not allowed("adam-betas", adadelta)[0] and not allowed("optimizer-rho", adadelta)[0]
    assert allowed("optimizer-rho", _facts({"optimizer": "adadelta", "rho": 0.95}, {"optimizer": "adadelta", "rho": 0.9}))[0]
    assert not allowed("optimizer-rho", _facts({"optimizer": "adam"}, {"optimizer": "adam"}))[0]
    assert not allowed("rmsprop-centered", _facts({"optimizer": "adam"}, {"optimizer": "adam"}))[0]
    assert not allowed("optimizer-class", adadelta)[0]
    assert allowed("optimizer-class", _facts({"optimizer": "adadelta"}, {"optimizer": "sgd"}))[0]
    assert not allowed("adam-betas", _facts({"optimizer": "adam", "beta1": 0.9, "beta2": 0.999},
                                            {"optimizer": "adam", "beta1": 0.9, "beta2": 0.999}))[0]
    assert not allowed("weight-decay", _facts({"weight_decay": 0.0}, {"weight_decay": 0.0}))[0]
    # Keras 2.3's Adadelta() lr 1.0 vs tf_keras' 0.001 is its own name; another rate is the plain learning-rate fact
    ref, port = {"optimizer": "adadelta", "lr": 1.0}, {"optimizer": "adadelta", "lr": 0.001}
    assert _name_of("lr", 1.0, 0.001, ref, port) == "adadelta-lr-default"
    assert _name_of("lr", 1.0, 0.5, ref, dict(port, lr=0.5)) == "learning-rate"
    assert _name_of("lr", 1.0, 0.001, {"optimizer": "sgd"}, {"optimizer": "sgd"}) == "learning-rate"


def test_dropout_names_need_their_own_difference():
    same_kinds = _facts({"dropout": ["d1: rate 0.25, channel"]}, {"dropout": ["d1: rate 0.25, channel"]})
    assert not allowed("dropout-kind", same_kinds)[0] and not allowed("dropout-site-missing", same_kinds)[0]
    kinds = _facts({"dropout": ["d1: rate 0.25, channel"]}, {"dropout": ["d1: rate 0.25, element"]})
    assert allowed("dropout-kind", kinds)[0] and not allowed("dropout-site-missing", kinds)[0]
    assert not allowed("dropout-keep-prob", kinds)[0]  # the rates match: never a rate fix for a kind difference
    missing = _facts({"dropout": ["in: rate 0.25, element", "d1: rate 0.25, element"]}, {"dropout": ["d1: rate 0.25, element"]})
    assert allowed("dropout-site-missing", missing)[0]
    assert _name_of("dropout", missing["reference"]["dropout"], missing["port"]["dropout"], {}, {}) == "dropout-site-missing"


@pytest.mark.tf
@pytest.mark.torch
def test_a_shape_difference_no_conv_padding_explains_is_unknown():
    # stride 2 on 5x6: SAME gives 3x3, VALID 2x2: a (1, 1) difference no k3 kernel's padding gives at stride 1
    base = get_case("pitfall_conv_padding_wrong")
    case = base.replace(name="conv_padding_stride2", options=dict(base.options, stride=2))
    result = run_case(case, dtypes=("float64",))
    cmp = result.comparisons[0]
    first = cmp.first_divergence
    assert not cmp.ok and first.kind == "structure" and first.stage == "forward" and "shape" in first.detail
    assert diagnose(case, cmp, result.traces["float64"]) == []
    # the catalogue's own case (stride 1) is named from the same kind of finding
    ok = get_case("pitfall_conv_padding_wrong")
    r1 = run_case(ok, dtypes=("float64",))
    assert [d.pitfall for d in diagnose(ok, r1.comparisons[0], r1.traces["float64"])] == ["conv-padding"]


@pytest.mark.tf
def test_tf_global_norm_counts_repeated_indexed_slices_rows_once_per_occurrence():
    tf = pytest.importorskip("tensorflow")
    tf1 = tf.compat.v1
    table = np.arange(12, dtype=np.float64).reshape(4, 3) / 10
    weights = np.array([[1.0, 2.0, 3.0]])
    graph = tf.Graph()
    with graph.as_default():
        E = tf1.get_variable("E", initializer=table)
        ids = tf.constant([1, 1, 1, 2])  # id 1 three times
        loss = tf.reduce_sum(tf.nn.embedding_lookup(E, ids) * tf.constant(weights))
        g = tf1.gradients(loss, [E])[0]
        norm = tf1.global_norm([g])
        dense = tf.convert_to_tensor(g)
        with tf1.Session(graph=graph) as s:
            s.run(tf1.global_variables_initializer())
            n, d = s.run([norm, dense])
    assert type(g).__name__ == "IndexedSlices"
    per_occurrence = np.sqrt(4 * np.sum(weights**2))  # 4 looked-up rows, each gradient = weights
    dense_norm = np.sqrt(np.sum((3 * weights) ** 2) + np.sum(weights**2))  # row 1 summed first: 3 x weights
    # float64 sums of a dozen small numbers: exact to ~1e-15; 1e-12 leaves room
    assert abs(n - per_occurrence) <= 1e-12 * per_occurrence
    assert abs(np.linalg.norm(d) - dense_norm) <= 1e-12 * dense_norm
    assert abs(n - dense_norm) > 0.3 * dense_norm  # 7.48 vs 11.83: the two norms are far apart


@pytest.mark.tf
@pytest.mark.torch
def test_lstm_double_bias_trained_second_bias_is_named_at_the_parameters_stage():
    # corpus 06: bias_hh zeroed but still trained; TF's one bias has no second (the mapping pairs bias_hh with a zero):
    # the port's bias_hh moves by exactly bias_ih's update from step 0. Its right port (bias_hh frozen) is clean.
    from parity.pitfalls.diagnose import settings_check

    wrong, right = get_case("pitfall_lstm_double_bias_trained_wrong"), get_case("pitfall_lstm_double_bias_trained_right")
    rw, rr = run_case(wrong, dtypes=("float64", "float32")), run_case(right, dtypes=("float64", "float32"))
    for c in rw.comparisons:
        first = c.first_divergence
        assert (first.step, first.stage, first.name) == (0, "parameters", "bias_hh")
        named = diagnose(wrong, c, rw.traces[c.dtype])
        assert named and named[0].pitfall == "lstm-double-bias", (c.dtype, named)
        assert "exactly bias's update" in named[0].evidence
    for c in rr.comparisons:
        assert c.ok and not diagnose(right, c, rr.traces[c.dtype]) and not settings_check(right, rr.traces[c.dtype]), c.dtype


def test_clip_threshold_of_the_sparse_rows_signature_comes_from_the_facts():
    from types import SimpleNamespace

    from parity.pitfalls.embedding import _threshold

    def ctx(ref, port):
        t = SimpleNamespace(manifest={"settings": {}})
        return SimpleNamespace(a=t, b=t, settings=lambda tr: {}, fact=lambda k: (ref, port))

    assert _threshold(ctx("global norm 5", "global norm 5.0"))[0] == 5.0
    # a hand-written clip (unread): the other side's threshold, which the signature then tests on the numbers
    assert _threshold(ctx("global norm 5", "unknown")) == (5.0, "the other program's clip fact; the port's clip is "
                                                                 "hand-written (threshold not read)")
    for ref, port in (("global norm 5", "global norm 1"), ("global norm 5", "none"), ("global norm", "global norm"),
                      ("value 5", "value 5"), (None, None)):
        assert _threshold(ctx(ref, port)) == (None, ""), (ref, port)


def test_a_port_only_dropout_site_explains_step_0_only():
    from types import SimpleNamespace

    from parity.pitfalls.facts import _reaches, _site_missing

    ref, port = {"dropout": []}, {"dropout": ["dropout1: rate 0.25, channel"]}
    at = lambda k, stage: SimpleNamespace(k=k, first=SimpleNamespace(stage=stage))  # noqa: E731
    assert _reaches(at(0, "forward"), "dropout", ref, port) and _reaches(at(0, "loss"), "dropout", ref, port)
    assert not _reaches(at(1, "forward"), "dropout", ref, port) and not _reaches(at(0, "gradients"), "dropout", ref, port)
    assert _site_missing(at(0, "forward"), ref, port) is None  # the mask is parity's own draw: not recomputed
    assert _site_missing(at(1, "forward"), ref, port)[0] is False


@pytest.mark.tf
@pytest.mark.torch
def test_a_forget_bias_in_a_hand_written_cell_shows_as_a_constant_gate_offset():
    # corpus 01 (#7): a hand-written cell adds 1.0 on f where the other side does not; no LSTM to reproduce there, the gate
    # outputs are compared: the first forget gate is the other side's with exactly that constant on its pre-activation
    from parity.pitfalls.base import Context
    from parity.pitfalls.rnn import _check_gate_offset

    wrong, right = get_case("pitfall_lstm_forget_bias_cell_wrong"), get_case("pitfall_lstm_forget_bias_cell_right")
    rw, rr = run_case(wrong, dtypes=("float64", "float32")), run_case(right, dtypes=("float64", "float32"))
    for c in rw.comparisons:
        first, traces = c.first_divergence, rw.traces[c.dtype]
        assert (first.step, first.stage, first.name) == (0, "forward", "f_t0")
        hit = _check_gate_offset(Context(c, first, traces[c.a["port"]], traces[c.b["port"]]))
        assert hit and "sigmoid(pre-activation -1) of the reference" in hit[1], (c.dtype, hit)  # the port lacks TF's run-time 1.0
        assert diagnose(wrong, c, traces)[0].pitfall == "lstm-forget-bias"
    for c in rr.comparisons:
        assert c.ok and not diagnose(right, c, rr.traces[c.dtype]), c.dtype
    # another cause (the gate order) is no constant offset: not named by this check
    order = get_case("pitfall_lstm_gate_order_wrong").replace(options={"cell": "hand"})
    ro = run_case(order, dtypes=("float64",))
    (c,) = ro.comparisons
    assert _check_gate_offset(Context(c, c.first_divergence, ro.traces["float64"][c.a["port"]], ro.traces["float64"][c.b["port"]])) is None
