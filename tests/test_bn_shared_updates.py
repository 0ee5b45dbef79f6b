"""A BatchNorm called twice in one TF1 step with its updates in the call (corpus 02, DCGAN: D(real) and D(fake) under
``tf.contrib.layers.batch_norm(updates_collections=None)``). TF leaves each call's read of the moving statistic
unordered with the other call's update; parity gives the graph one order (every read first: each update from the
statistics the step read), states the fact, and names a port that chains the updates ``bn-shared-updates`` from
the numbers (the first call's batch statistics predict the difference), never elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.tf]

D = 0.9  # the decay (TF momentum)
N = 8


def _two_tower_program(dtype_written="float32"):
    """x -> conv -> BN -> loss on two batches (real, fake) through one BN, its updates in the call, as TF 1.15's
    contrib batch_norm builds them (fused, updates_collections=None); the weights shared with reuse=True."""
    import tensorflow.compat.v1 as tf
    from tensorflow.python.training import moving_averages

    def bn(x):
        with tf.variable_scope("d_bn1"):
            gamma = tf.get_variable("gamma", [4], tf.float32, tf.ones_initializer())
            beta = tf.get_variable("beta", [4], tf.float32, tf.zeros_initializer())
            mm = tf.get_variable("moving_mean", [4], tf.float32, tf.zeros_initializer(), trainable=False)
            mv = tf.get_variable("moving_variance", [4], tf.float32, tf.ones_initializer(), trainable=False)
            y, mean, var = tf.nn.fused_batch_norm(x, gamma, beta, epsilon=1.001e-5)
            with tf.control_dependencies([moving_averages.assign_moving_average(mm, mean, D, zero_debias=False),
                                          moving_averages.assign_moving_average(mv, var, D, zero_debias=False)]):
                return tf.identity(y)

    def disc(x, reuse=False):
        with tf.variable_scope("discriminator", reuse=reuse):
            w = tf.get_variable("w", [1, 1, 3, 4], tf.float32, tf.random_normal_initializer(stddev=0.5, seed=2))
            return tf.reduce_mean(bn(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME")) ** 2, axis=[1, 2, 3])

    def program():
        x = tf.placeholder(tf.float32, [N, 2, 2, 3], name="x")
        fake = tf.placeholder(tf.float32, [N, 2, 2, 3], name="fake")
        loss = tf.reduce_mean(disc(x)) - tf.reduce_mean(disc(fake + 1.0, reuse=True))
        opt = tf.train.GradientDescentOptimizer(0.1)
        return {"inputs": {"x": x, "fake": fake}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt}
    return program


BATCH = {"x": np.random.default_rng(1).normal(0.5, 2.0, (N, 2, 2, 3)),
         "fake": np.random.default_rng(2).normal(-0.3, 1.0, (N, 2, 2, 3))}


def _capture(dtype, config=None):
    from tf_impl.v1.capture import capture

    program = _two_tower_program()
    if config is None:
        return capture(program, dtype=dtype)

    def with_config():
        out = program()
        out["session_config"] = config
        return out
    return capture(with_config, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_two_calls_update_from_the_statistics_the_step_read_in_every_session(dtype):
    import tensorflow as tf

    default_threads = tf.compat.v1.ConfigProto()
    for config in (None, default_threads):  # parity's one-thread session, TF's default threads
        prog = _capture(dtype, config)
        try:
            start = prog.parameters()
            w = np.asarray(start["discriminator/w"], float).reshape(3, 4)
            h1 = BATCH["x"].reshape(-1, 3) @ w
            h2 = (BATCH["fake"] + 1.0).reshape(-1, 3) @ w
            results = []
            for _ in range(3):
                prog.load(start)
                state = prog.step(BATCH)["state"]
                results.append(state)
            m0, v0 = 0.0, 1.0
            want_mean = m0 - (1 - D) * (m0 - h1.mean(0)) - (1 - D) * (m0 - h2.mean(0))
            want_var = v0 - (1 - D) * (v0 - h1.var(0, ddof=1)) - (1 - D) * (v0 - h2.var(0, ddof=1))
            chained = D * (D * m0 + (1 - D) * h1.mean(0)) + (1 - D) * h2.mean(0)
            # float32: the fused kernel's moments of 32 values and the decay 0.1 in float32 (6e-8): 1e-5 relative;
            # float64: 1e-12 (sums of 32 products)
            rtol = 1e-12 if dtype == "float64" else 1e-5
            for state in results:
                np.testing.assert_allclose(state["discriminator/d_bn1/moving_mean"], want_mean, rtol=rtol, atol=rtol)
                np.testing.assert_allclose(state["discriminator/d_bn1/moving_variance"], want_var, rtol=rtol)
                assert np.abs(state["discriminator/d_bn1/moving_mean"] - chained).max() > 1e-3  # told apart
            assert all(np.array_equal(r["discriminator/d_bn1/moving_mean"], results[0]["discriminator/d_bn1/moving_mean"])
                       for r in results)
            assert any("updated by two or more calls in one run (discriminator/d_bn1)" in n for n in prog.notes())
            facts = prog.facts()
            assert facts["batchnorm.shared"] == [
                "discriminator/d_bn1: 2 updates in one run, each from the statistics the run read (reads not ordered "
                "after the other updates)"]
            names = [s.name for s in prog.parameter_specs()]
            assert "discriminator/d_bn1/moving_mean" in names  # in-call updates make it model state (mapped)
        finally:
            prog.close()


def test_a_variable_shared_under_its_float32_dtype_is_found_in_the_float64_rebuild():
    # carpedm20's linear(): tf.get_variable("Matrix", shape, tf.float32, ...), reused by the sampler
    import tensorflow.compat.v1 as tf

    from tf_impl.v1.capture.dtype import _call_program

    def program():
        x = tf.placeholder(tf.float32, [2, 3])
        with tf.variable_scope("g"):
            w = tf.get_variable("Matrix", [3, 1], tf.float32, tf.ones_initializer())
        with tf.variable_scope("g", reuse=True):
            w2 = tf.get_variable("Matrix", [3, 1], tf.float32)
        loss = tf.reduce_sum(tf.matmul(x, w) + tf.matmul(x, w2))
        return {"inputs": {"x": x}, "loss": loss, "train_op": tf.train.GradientDescentOptimizer(0.1).minimize(loss)}

    built = _call_program(program, tf.Graph(), "float64")
    assert built["loss"].dtype == tf.float64


def test_order_leaves_a_single_update_and_other_variables_alone():
    import tensorflow.compat.v1 as tf
    from tensorflow.python.training import moving_averages

    from tf_impl.v1.capture.bn_order import order_shared_updates

    g = tf.Graph()
    with g.as_default():
        v = tf.get_variable("v", [2], initializer=tf.zeros_initializer(), use_resource=True)
        u = tf.get_variable("u", [2], initializer=tf.zeros_initializer(), use_resource=True)
        a = moving_averages.assign_moving_average(v, tf.ones([2]), 0.9, zero_debias=False)
        b = moving_averages.assign_moving_average(v, 2 * tf.ones([2]), 0.9, zero_debias=False)
        c = moving_averages.assign_moving_average(u, tf.ones([2]), 0.9, zero_debias=False)
    gdef = g.as_graph_def()
    assert order_shared_updates(gdef) == ["v"]
    nodes = {n.name: n for n in gdef.node}
    ctrl = {n: [i for i in nodes[n].input if i.startswith("^")] for n in (a.op.name, b.op.name, c.op.name)}
    assert ctrl[c.op.name] == [] and len(ctrl[a.op.name]) == 1 and len(ctrl[b.op.name]) == 1
    assert nodes[ctrl[a.op.name][0][1:]].op == "ReadVariableOp" and ctrl[a.op.name] != ctrl[b.op.name]


# -- the catalogue pitfall ---------------------------------------------------------------------------------------
@pytest.mark.torch
def test_catalogue_wrong_port_is_named_first_and_right_port_is_clean_in_both_dtypes():
    from parity.tools.pitfall_check import run_catalogue

    results = run_catalogue(("float64", "float32"), names=["bn-shared-updates"])
    assert [r.dtype for r in results] == ["float64", "float32"]
    for r in results:
        assert r.caught and r.named_first and r.stage == "state", r
        assert r.right_clean, r


@pytest.mark.torch
def test_bn_pitfall_family_confusion_stays_diagonal():
    # the other BatchNorm wrong ports (a momentum, a variance form, frozen statistics) are never named
    # bn-shared-updates: their reference states no shared updates
    from parity.tools.pitfall_check import run_catalogue
    from parity.tools.pitfall_matrix import confusion

    names = ["bn-momentum", "bn-running-var", "bn-update-ops", "bn-shared-updates"]
    results = run_catalogue(("float64", "float32"), names=names)
    matrix = confusion(results)
    assert {(p, n) for (p, n) in matrix} == {(p, p) for p in names}, matrix
    assert all("bn-shared-updates" not in r.named for r in results if r.pitfall != "bn-shared-updates")


def _traces_and_facts(shared: bool, chained: bool, dtype="float64"):
    """A hand-made step-0 pair: TF's stale update vs a port's (chained or the same), the batch as a layer output."""
    from parity.comparison.comparator import compare
    from parity.trace.memory import Trace

    rng = np.random.default_rng(3)
    h1, h2 = rng.normal(0.4, 1.3, (N, 4)), rng.normal(-0.2, 0.7, (N, 4))
    m0, v0 = np.zeros(4), np.ones(4)
    a, b, va, vb = h1.mean(0), h2.mean(0), h1.var(0, ddof=1), h2.var(0, ddof=1)
    stale = {"bn/moving_mean": m0 - (1 - D) * (2 * m0 - a - b), "bn/moving_variance": v0 - (1 - D) * (2 * v0 - va - vb)}
    chain = {"bn/moving_mean": D * (D * m0 + (1 - D) * a) + (1 - D) * b,
             "bn/moving_variance": D * (D * v0 + (1 - D) * va) + (1 - D) * vb}
    port_state = chain if chained else stale

    def trace(port, framework, state):
        t = Trace(manifest={"case": "c", "port": port, "dtype": dtype, "framework": framework, "settings": {}})
        t.initial = {"bn/moving_mean": m0, "bn/moving_variance": v0}
        t.add_step({"forward": {"conv": h1, "conv_1": h2}, "state": state})
        return t
    ta, tb = trace("tf1", "tf1", stale), trace("torch", "torch", port_state)
    line = "bn: momentum 0.9, eps 1.001e-05, moving variance unbiased"
    ref = {"framework": "tf1", "batchnorm": [line]}
    if shared:
        ref["batchnorm.shared"] = ["bn: 2 updates in one run, each from the statistics the run read"]
    facts = {"reference": ref, "port": {"framework": "torch", "batchnorm": [line]}, "differs": {}}
    return compare(ta, tb), [ta, tb], facts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_program_pair_is_named_from_the_fact_and_the_predicted_numbers(dtype):
    from parity.pitfalls.diagnose import diagnose

    cmp, traces, facts = _traces_and_facts(shared=True, chained=True, dtype=dtype)
    assert cmp.first_divergence.stage == "state"
    found = diagnose(None, cmp, traces, facts=facts)
    assert found and found[0].pitfall == "bn-shared-updates", found
    assert "conv's per-channel mean" in found[0].evidence


def test_never_named_without_the_fact_nor_when_the_numbers_say_otherwise():
    from parity.pitfalls.diagnose import diagnose

    cmp, traces, facts = _traces_and_facts(shared=False, chained=True)
    assert "bn-shared-updates" not in [d.pitfall for d in diagnose(None, cmp, traces, facts=facts)]
    cmp, traces, facts = _traces_and_facts(shared=True, chained=False)
    assert cmp.first_divergence is None  # the port updates the TF way: nothing to name
    # a momentum difference with the fact stated: the numbers do not follow (1 - d)^2 (batch - previous)
    cmp, traces, facts = _traces_and_facts(shared=True, chained=True)
    traces[1].steps[0]["state"] = {k: 0.5 * v + 0.5 * traces[0].steps[0]["state"][k] + 0.01
                                   for k, v in traces[1].steps[0]["state"].items()}
    from parity.comparison.comparator import compare

    cmp = compare(*traces)
    assert "bn-shared-updates" not in [d.pitfall for d in diagnose(None, cmp, traces, facts=facts)]
