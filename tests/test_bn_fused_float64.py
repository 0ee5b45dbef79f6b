"""A fused batch normalisation in a TF1 program runs in float64 with the fused kernel's maths (corpus 02, DCGAN:
TF 1.15's ``tf.contrib.layers.batch_norm`` defaults to fused=None, which means fused, and calls
``nn.fused_batch_norm``; FusedBatchNormV3 has float32 kernels only). The float64 rebuild computes the kernel from
float64 ops: normalised with the biased batch variance, the returned (and stored) batch variance Bessel-corrected.
Its forward site, facts and state names are the float32 program's."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.tf

N, H, W, C = 4, 3, 3, 2
X = np.random.default_rng(0).normal(0.4, 1.7, (N, H, W, C))


def _contrib_program(decay=0.9, epsilon=1e-3, direct=True):
    """TF 1.15 contrib batch_norm's fused path as it builds it (``_fused_batch_norm``, updates_collections=None),
    or (direct=False) a legacy ``tf.layers`` BatchNormalization with fused=None."""
    import tensorflow.compat.v1 as tf
    from tensorflow.python.training import moving_averages

    def program():
        x = tf.placeholder(tf.float32, [N, H, W, C])
        w = tf.get_variable("w", [1, 1, C, C], initializer=tf.random_normal_initializer(seed=1))
        h = tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME")
        with tf.variable_scope("bn"):
            if direct:
                gamma = tf.get_variable("gamma", [C], initializer=tf.ones_initializer())
                beta = tf.get_variable("beta", [C], initializer=tf.zeros_initializer())
                mm = tf.get_variable("moving_mean", [C], initializer=tf.zeros_initializer(), trainable=False)
                mv = tf.get_variable("moving_variance", [C], initializer=tf.ones_initializer(), trainable=False)
                y, mean, var = tf.nn.fused_batch_norm(h, gamma, beta, epsilon=epsilon)
                with tf.control_dependencies([moving_averages.assign_moving_average(mm, mean, decay, zero_debias=False),
                                              moving_averages.assign_moving_average(mv, var, decay, zero_debias=False)]):
                    y = tf.identity(y)
            else:
                from tf_keras.src.legacy_tf_layers.normalization import batch_normalization

                y = batch_normalization(h, momentum=decay, epsilon=epsilon, training=True, fused=None)
                with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
                    y = tf.identity(y)
        loss = tf.reduce_sum(y ** 2 * [1.0, 2.0])
        opt = tf.train.GradientDescentOptimizer(0.1)
        return {"inputs": {"x": x}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt}
    return program


def _one_step(program, dtype, params=None):
    from tf_impl.v1.capture import capture

    prog = capture(program, dtype=dtype)
    try:
        if params is not None:
            prog.load(params)
        start = prog.parameters()
        return start, prog.step({"x": X}), prog.facts(), prog.notes(), prog.forward_kinds()
    finally:
        prog.close()


def _expected_state(h, decay):
    flat = h.reshape(-1, C)
    return (1 - decay) * flat.mean(0), decay + (1 - decay) * flat.var(0, ddof=1)


@pytest.mark.parametrize("direct", [True, False], ids=["contrib_fused_path", "legacy_layer_fused_none"])
def test_fused_batch_norm_program_runs_in_float64_with_the_kernels_maths(monkeypatch, direct):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    program = _contrib_program(direct=direct)
    p32, o32, f32, _, k32 = _one_step(program, "float32")
    p64, o64, f64, notes, k64 = _one_step(program, "float64", params=p32)
    assert o64["state"]["bn/moving_mean"].dtype == np.float64 if direct else True
    # the float32 program's names: forward sites, state, facts
    assert sorted(o64["forward"]) == sorted(o32["forward"]) and k64 == k32
    assert sorted(o64["state"]) == sorted(o32["state"])
    assert f64["batchnorm"] == f32["batchnorm"] and "moving variance unbiased" in f64["batchnorm"][0]
    assert any("batch normalisation" in n and "n/(n-1)" in n for n in notes), notes
    # the moving statistics: the kernel's Bessel-corrected batch variance, exactly in float64
    w = p64["w"].reshape(C, C)
    h = X.reshape(-1, C) @ w
    mean, var = _expected_state(h, 0.9)
    state = {k.rsplit("/", 1)[1]: v for k, v in o64["state"].items()}
    np.testing.assert_allclose(state["moving_mean"], mean, rtol=1e-12)  # float64 reductions of 36 values: ~1e-15
    np.testing.assert_allclose(state["moving_variance"], var, rtol=1e-12)
    biased = 0.9 + 0.1 * h.var(0)
    assert np.all(np.abs(state["moving_variance"] - biased) > 1e-3)  # the biased form is far: the test can fail
    # the float32 kernel computes the same step: every stage within float32 rounding
    # a gradient through BatchNorm is a sum over the batch that cancels (beta's is exactly 0 here: the loss is even
    # in y, y has mean 0): measured against its terms, sum |dL/dy| * max(1, |h|) (dL/dy = 2 y c), not its size
    (y,) = [v for k, v in o64["forward"].items() if k != "Conv2D"]
    terms = np.abs(2 * y * [1.0, 2.0]).sum() * max(1.0, np.abs(h).max())
    for stage in ("forward", "loss", "gradients", "parameters", "state"):
        for name, v64 in o64[stage].items():
            v32 = np.asarray(o32[stage][name], np.float64)
            # a parameter moves by lr (0.1) times its gradient: beta starts at 0 and moves by a cancelling sum
            scale = {"gradients": terms, "parameters": max(np.abs(v64).max(), 0.1 * terms)}.get(stage, np.abs(v64).max())
            # float32 relative rounding (6e-8) grown through a conv, the batch moments and one SGD step: 1e-5
            # (the biased and unbiased variance forms differ by 1/35 = 3e-2)
            assert np.abs(v32 - v64).max() / scale < 1e-5, (stage, name)


def test_the_emulation_normalises_with_the_biased_variance_and_the_given_epsilon():
    import tensorflow as tf

    from tf_impl.v1.capture.dtype import fused_kernel_in_float64

    x = tf.constant(X)
    with fused_kernel_in_float64("float64"):
        y, m, v = tf.compat.v1.nn.fused_batch_norm(x, tf.constant([1.0, 2.0], tf.float64),
                                                    tf.constant([0.0, 0.5], tf.float64), epsilon=1e-5)
    flat = X.reshape(-1, C)
    want = (X - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5) * [1.0, 2.0] + [0.0, 0.5]
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-13)  # float64 rounding of 36-value moments
    np.testing.assert_allclose(v.numpy(), flat.var(0, ddof=1), rtol=1e-12)  # (unbiased: n/(n-1) = 36/35 is 3e-2 off)
    # float32 input: the real kernel, untouched
    with fused_kernel_in_float64("float64"):
        y32, _, _ = tf.compat.v1.nn.fused_batch_norm(tf.constant(X, tf.float32), tf.ones([2]), tf.zeros([2]))
    assert y32.dtype == tf.float32
    assert not getattr(tf.compat.v1.nn.fused_batch_norm, "_parity_fused_as_float64", False)  # restored


def test_the_emulation_keeps_the_kernels_running_average_and_inference_forms():
    import tensorflow as tf

    from tf_impl.v1.capture.dtype import fused_kernel_in_float64

    x, mean0, var0 = tf.constant(X), tf.constant([0.5, -1.0], tf.float64), tf.constant([2.0, 3.0], tf.float64)
    one, zero = tf.ones([2], tf.float64), tf.zeros([2], tf.float64)
    with fused_kernel_in_float64("float64"):
        _, m, v = tf.compat.v1.nn.fused_batch_norm(x, one, zero, mean=mean0, variance=var0, exponential_avg_factor=0.25)
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, one, zero, mean=mean0, variance=var0, is_training=False,
                                                    data_format="NHWC", epsilon=0.01)
    flat = X.reshape(-1, C)  # float64 moments of 36 values and one average: 1e-12 relative (~1e-15 expected)
    np.testing.assert_allclose(m.numpy(), 0.75 * mean0.numpy() + 0.25 * flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(v.numpy(), 0.75 * var0.numpy() + 0.25 * flat.var(0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(y.numpy(), (X - mean0.numpy()) / np.sqrt(var0.numpy() + 0.01), rtol=1e-12)
    # the float32 kernel agrees (its float32 rounding: 1e-5 relative on O(1) values)
    y32, m32, v32 = tf.compat.v1.nn.fused_batch_norm(tf.cast(x, tf.float32), tf.ones([2]), tf.zeros([2]),
                                                      mean=tf.cast(mean0, tf.float32), variance=tf.cast(var0, tf.float32),
                                                      exponential_avg_factor=0.25)
    np.testing.assert_allclose(v32.numpy(), v.numpy(), rtol=1e-5)
