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
