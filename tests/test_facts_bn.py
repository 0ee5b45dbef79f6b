"""BatchNorm facts (corpus 02, DCGAN): the TF1 reader finds tf.layers / tf_keras legacy / contrib BatchNorms
fused or not (momentum, eps, the moving variance's form), and a BatchNorm name is given only from facts both
programs state, the numbers deciding between a momentum difference and the variance's form."""

from __future__ import annotations

import numpy as np
import pytest

from parity.comparison.comparator import compare
from parity.pitfalls.diagnose import diagnose
from parity.pitfalls.facts import allowed
from parity.trace.memory import Trace

W = 0.1  # the new batch's weight (TF momentum 0.9, torch momentum 0.1)
N = 8  # values per channel in the batch


def _trace(port, steps, initial, framework):
    t = Trace(manifest={"case": "c", "port": port, "dtype": "float64", "framework": framework, "settings": {}})
    t.initial = initial
    for s in steps:
        t.add_step(s)
    return t


def _facts(ref_lines, port_lines):
    ref = {"framework": "tf1", "mode": "train", "batchnorm": ref_lines}
    port = {"framework": "torch", "mode": "train", "batchnorm": port_lines}
    return {"reference": ref, "port": port, "differs": {"batchnorm": (ref_lines, port_lines)}}


TF_BIASED = ["bn: momentum 0.9, eps 1e-05, moving variance biased"]
TORCH = ["0: momentum 0.9, eps 1e-05, moving variance unbiased"]


def _bn_step(x, w_a, w_b, unbiased_b):
    """One training step's moving statistics from batch x (N x 3), started at mean 0 / variance 1."""
    mean, var = x.mean(0), x.var(0)
    var_b = var * N / (N - 1) if unbiased_b else var
    a = {"bn/moving_mean": w_a * mean, "bn/moving_variance": (1 - w_a) + w_a * var}
    b = {"bn/moving_mean": w_b * mean, "bn/moving_variance": (1 - w_b) + w_b * var_b}
    init = {"bn/moving_mean": np.zeros(3), "bn/moving_variance": np.ones(3)}
    ta = _trace("tf1", [{"state": a}], dict(init), "tf1")
    tb = _trace("torch", [{"state": b}], dict(init), "torch")
    return ta, tb


X = np.random.default_rng(2).normal(0.3, 1.5, (N, 3))


def test_unbiased_running_variance_is_bn_running_var_never_bn_momentum():
    a, b = _bn_step(X, W, W, unbiased_b=True)
    cmp = compare(a, b)
    assert cmp.first_divergence.stage == "state" and cmp.first_divergence.name == "bn/moving_variance"
    found = diagnose(None, cmp, [a, b], facts=_facts(TF_BIASED, TORCH))
    names = [d.pitfall for d in found]
    assert names[:1] == ["bn-running-var"] and found[0].score == 1.0, found
    assert "bn-momentum" not in names
    assert "n = 8" in found[0].evidence  # the batch parts in ratio n/(n-1) with the batch's 8 values per channel
    # even where the facts also state different momenta, the moving mean that agrees rules the momentum out
    found = diagnose(None, cmp, [a, b], facts=_facts(["bn: momentum 0.99, eps 1e-05, moving variance biased"], TORCH))
    assert [d.pitfall for d in found][:1] == ["bn-running-var"] and "bn-momentum" not in [d.pitfall for d in found]


def test_a_batchnorm_fact_unread_on_one_side_gives_no_name():
    # corpus 02 before the reader knew non-fused BN: the TF1 side listed [] against the port's 7 sites
    a, b = _bn_step(X, W, W, unbiased_b=True)
    cmp = compare(a, b)
    named = [d.pitfall for d in diagnose(None, cmp, [a, b], facts=_facts([], TORCH))]
    assert "bn-momentum" not in named, named
    assert named[:1] == ["bn-running-var"]  # from the catalogue's signature (the numbers), not from the facts
    # a field one side leaves unsaid is no evidence either
    named = [d.pitfall for d in diagnose(None, cmp, [a, b], facts=_facts(["bn: momentum 0.99, eps 1e-05"], TORCH))]
    assert "bn-momentum" not in named


def test_a_momentum_difference_moves_the_mean_and_is_bn_momentum():
    a, b = _bn_step(X, W, 0.9, unbiased_b=False)  # torch momentum 0.9 copied from TF's 0.9
    cmp = compare(a, b)
    found = diagnose(None, cmp, [a, b], facts=_facts(TF_BIASED, ["0: momentum 0.1, eps 1e-05, moving variance biased"]))
    names = [d.pitfall for d in found]
    assert names[:1] == ["bn-momentum"] and found[0].score == 1.0, found
    assert "bn-running-var" not in names  # both programs store the biased variance: ruled out by the facts
    assert not allowed("bn-running-var", _facts(TF_BIASED, ["0: momentum 0.1, eps 1e-05, moving variance biased"]))[0]


def test_torch_facts_state_the_unbiased_running_variance():
    torch = pytest.importorskip("torch")
    from tests.test_facts import torch_facts

    model = torch.nn.Sequential(torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2, track_running_stats=False))
    f = torch_facts(model, torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.MSELoss())
    assert f["batchnorm"] == ["0: momentum 0.9, eps 1e-05, moving variance unbiased",
                              "1: momentum 0.9, eps 1e-05, no moving statistics"]


@pytest.mark.tf
def test_tf1_reader_finds_fused_and_non_fused_batchnorms():
    tf = pytest.importorskip("tensorflow").compat.v1
    from tf_keras.src.legacy_tf_layers.normalization import batch_normalization

    from tf_impl.v1.capture.facts import bn_facts
    from tf_impl.v1.capture.graph import _ancestors

    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [8, 4, 4, 3])
        with tf.variable_scope("d_bn1"):  # what tf.contrib.layers.batch_norm builds (DCGAN's ops.batch_norm)
            a = batch_normalization(x, momentum=0.9, epsilon=1e-5, training=True, fused=False)
        with tf.variable_scope("fused"):
            b = batch_normalization(x, momentum=0.8, epsilon=2e-3, training=True, fused=True)
        with tf.variable_scope("unused"):  # not on the loss's forward pass: not listed
            batch_normalization(x, momentum=0.5, training=True, fused=False)
        loss = tf.reduce_sum(a) + tf.reduce_sum(b)
        lines = bn_facts(g, _ancestors([loss.op], control=False))
    assert lines == ["d_bn1/batch_normalization: momentum 0.9, eps 1e-05, moving variance biased",
                     "fused/batch_normalization: momentum 0.8, eps 0.002, moving variance unbiased"]


@pytest.mark.tf
def test_keras_facts_state_the_moving_variance_form_of_each_keras():
    pytest.importorskip("tensorflow")
    tf_keras = pytest.importorskip("tf_keras")
    import keras

    from tf_impl.v2.capture.facts import layer_facts

    conv, dense = tf_keras.layers.BatchNormalization(name="conv"), tf_keras.layers.BatchNormalization(name="dense")
    conv.build((None, 4, 4, 3)), dense.build((None, 3))  # tf_keras: the fused kernel on 4-D inputs, decided at build
    k3 = keras.layers.BatchNormalization(name="k3")
    assert layer_facts([conv, dense, k3])["batchnorm"] == [
        "conv: momentum 0.99, eps 0.001, moving variance unbiased",
        "dense: momentum 0.99, eps 0.001, moving variance biased",
        "k3: momentum 0.99, eps 0.001, moving variance biased"]
    assert layer_facts([tf_keras.layers.BatchNormalization(name="unbuilt")])["batchnorm"] == [
        "unbuilt: momentum 0.99, eps 0.001"]  # not built: the form is not decided yet, so not said


@pytest.mark.tf
def test_tf1_loss_is_not_read_from_a_batchnorms_moments():
    # corpus 02: DCGAN's d_loss (sigmoid cross-entropy on logits through BatchNorms) was read as "mean squared
    # error" from tf.nn.moments' SquaredDifference
    tf = pytest.importorskip("tensorflow").compat.v1
    from tf_impl.v1.capture.facts import loss_facts

    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float32, [8, 3])
        mean, var = tf.nn.moments(x, [0])
        logits = tf.reduce_sum((x - mean) / tf.sqrt(var + 1e-5), 1)
        bce = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=tf.ones_like(logits)))
        mse = tf.reduce_mean(tf.square(logits - 1.0))
        assert (loss_facts(g, bce.name)["loss"], loss_facts(g, bce.name)["loss.on"]) == ("sigmoid cross-entropy", "logits")
        assert loss_facts(g, mse.name)["loss"] == "mean squared error"


def test_a_fused_tf_keras_layer_rebuilt_in_float64_still_states_the_unbiased_variance(monkeypatch):
    # corpus 05: the float64 rebuild runs tf_keras' fused BatchNorm non-fused (no float64 kernel) with the
    # fused kernel's n/(n-1) (fused_batch_norm_convention); the fact is the float32 program's: unbiased
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    from tf_impl.v1.capture.dtype import fused_batch_norm_convention
    from tf_impl.v2.capture.facts import layer_facts

    layer = tf_keras.layers.BatchNormalization(name="bn", dtype="float64")
    with fused_batch_norm_convention("float64"):
        layer(tf.ones((2, 3, 3, 4), tf.float64), training=True)
    assert layer.fused is False  # float64: the non-fused path ran
    assert layer_facts([layer])["batchnorm"] == ["bn: momentum 0.99, eps 0.001, moving variance unbiased"]
