"""The TF1 float64 rebuild (tf_impl/v1/capture/dtype.py, retype.py): recurrent graphs, float32 attributes.

* ``dynamic_rnn`` over each TF1 cell, ``static_rnn`` and a plain ``tf.while_loop`` with a float32
  TensorArray capture in float64 and float32: in float64 every float32 left in the graph is a
  TensorArray flow (it feeds control flow, TensorArrays and stacks only, never arithmetic), and a
  step from the same weights agrees with the float32 step to float32 rounding.
* A graph with an op that has no float64 kernel raises the adapter's ``DtypeError`` in one line
  (float32 still runs): never an internal error.
* ``tf.nn.leaky_relu(x, 0.2)``: its ``alpha`` attribute is float32 in every graph; the float64
  rebuild computes with the float64 0.2 and lists it in the notes; the TF1 example agrees with
  its torch port in float64 (it was 3e-9 SEMANTIC).
* The recurrent example pair (examples/recurrent/) reaches a verdict through ``parity diff``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")


@pytest.fixture(autouse=True)
def _legacy_keras(monkeypatch):
    # tf.compat.v1.nn.rnn_cell under TF 2.16+ (tf_keras); per test, so no other file's Keras 3 ports see it
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "recurrent")
T, F, H = 4, 3, 5
#: float32 vs float64 of the same recurrent step: float32 roundings (2**-24 each) through 4 time steps;
#: measured 1.4e-7..9.1e-7 relative over the programs below (the largest: two bidirectional layers); ~4x that
#: fails at anything the rebuild computes differently (a wrong gate or state; a float32 constant, 3e-9 relative,
#: is tested apart against numpy)
CROSS_DTYPE_TOL = 4e-6
#: ops that may carry a TensorArray's float32 flow in a float64 graph
FLOW_OPS = {"Enter", "Exit", "Merge", "Switch", "NextIteration", "Identity", "StackPushV2", "StackPopV2", "StackV2"}


def _rnn_program(kind: str):
    def program():
        tf1 = tf.compat.v1
        cells = tf1.nn.rnn_cell
        x = tf1.placeholder(tf.float32, [None, T, F], name="x")
        y = tf1.placeholder(tf.float32, [None, H], name="y")
        feeds = {}
        if kind == "static":
            outs, _ = tf1.nn.static_rnn(cells.BasicLSTMCell(H), tf.unstack(x, T, 1), dtype=tf.float32)
            last = outs[-1]
        elif kind == "bidirectional_dropout":  # keep_prob a placeholder_with_default(0.8), fed 1.0 here
            keep = tf1.placeholder_with_default(0.8, [], name="keep_prob")
            cell = lambda: cells.MultiRNNCell([cells.DropoutWrapper(cells.BasicLSTMCell(H), output_keep_prob=keep),  # noqa: E731
                                               cells.GRUCell(H)])
            (fw, bw), _ = tf1.nn.bidirectional_dynamic_rnn(cell(), cell(), x, dtype=tf.float32)
            last, feeds = fw[:, -1] + bw[:, 0], {keep: 1.0}
        elif kind == "explicit_float32":  # a cast to float32 parity cannot retype: the as-written graph is rewritten
            outs, _ = tf1.nn.dynamic_rnn(cells.GRUCell(H), tf.cast(x, tf.float32) * 1.0, dtype=tf.float32)
            last = tf.cast(outs[:, -1], tf.float32)
        elif kind == "while":  # a hand-written loop over a float32 TensorArray
            w, u = tf1.get_variable("w", [F, H]), tf1.get_variable("u", [H, H])
            ta = tf1.TensorArray(tf.float32, size=T).unstack(tf.transpose(x, [1, 0, 2]))
            body = lambda t, h: (t + 1, tf.tanh(tf.matmul(ta.read(t), w) + tf.matmul(h, u)))  # noqa: E731
            _, last = tf1.while_loop(lambda t, h: t < T, body, [tf.constant(0), tf.zeros([tf.shape(x)[0], H])])
        else:
            cell = {"basic_lstm": lambda: cells.BasicLSTMCell(H), "lstm": lambda: cells.LSTMCell(H, use_peepholes=True),
                    "gru": lambda: cells.GRUCell(H), "basic_rnn": lambda: cells.BasicRNNCell(H),
                    "multi": lambda: cells.MultiRNNCell([cells.BasicLSTMCell(H), cells.GRUCell(H)]),
                    "zero_state": lambda: cells.LSTMCell(H)}[kind]()
            if kind == "zero_state":
                state = cell.zero_state(tf.shape(x)[0], tf.float32)
                outs, _ = tf1.nn.dynamic_rnn(cell, x, initial_state=state)
            else:
                outs, _ = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            last = outs[:, -1]
        loss = tf.reduce_mean(tf.square(last - y))
        opt = tf1.train.GradientDescentOptimizer(0.5)
        return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt,
                "feeds": feeds}

    return program


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b), initial=0.0)) / max(float(np.max(np.abs(b), initial=0.0)), 1e-300)


def _float32_feeds_arithmetic(graph) -> list[str]:
    """The float32 tensors of ``graph`` that an op other than control flow / TensorArray / stack consumes."""
    bad = []
    for op in graph.get_operations():
        for t in op.outputs:
            if t.dtype.base_dtype == tf.float32:
                for c in t.consumers():
                    if c.type not in FLOW_OPS and not c.type.startswith("TensorArray"):
                        bad.append(f"{t.name} -> {c.type} {c.name}")
    return bad


@pytest.mark.parametrize("kind", ["basic_lstm", "lstm", "gru", "basic_rnn", "multi", "zero_state", "static", "while",
                                  "bidirectional_dropout", "explicit_float32"])
def test_recurrent_graph_captures_in_float64_and_float32_and_computes_the_same(kind):
    from tf_impl.v1.capture import capture

    p32 = capture(_rnn_program(kind), dtype="float32")
    p64 = capture(_rnn_program(kind), dtype="float64")
    try:
        assert _float32_feeds_arithmetic(p64.graph) == []
        # dtype=tf.float32 given to the rnn functions and zero_state is followed; an explicit float32 (a cast, a
        # TensorArray) makes the float64 build fail: the as-written graph is rewritten, and says so
        assert any("failed" in n for n in p64.notes()) == (kind in ("while", "explicit_float32")), p64.notes()
        params = p32.parameters()
        p64.load(params)
        rng = np.random.default_rng(0)
        batch = {"x": rng.standard_normal((2, T, F)), "y": rng.standard_normal((2, H))}
        out32, out64 = p32.step(batch), p64.step(batch)
        for stage in ("loss", "gradients", "parameters"):
            for name, v in out64[stage].items():
                assert np.asarray(v).dtype == np.float64, (stage, name)
                assert _rel(v, out32[stage][name]) <= CROSS_DTYPE_TOL, (stage, name, _rel(v, out32[stage][name]))
        assert set(out64["gradients"]) == set(params)
    finally:
        p32.close()
        p64.close()


def test_graph_without_a_float64_kernel_is_refused_in_one_line_and_float32_runs():
    from parity.portkit.program import DtypeError
    from tf_impl.v1.capture import capture

    def program():
        tf1 = tf.compat.v1
        x = tf1.placeholder(tf.float32, [None, 2, 2, 3], name="x")
        w = tf1.get_variable("w", [3, 3])
        y = tf1.nn.local_response_normalization(tf.tensordot(x, w, 1))  # LRN: float32 / half kernels only
        loss = tf.reduce_sum(y)
        opt = tf1.train.GradientDescentOptimizer(0.1)
        return {"inputs": {"x": x}, "loss": loss, "train_op": opt.minimize(loss)}

    capture(program, dtype="float32").close()
    with pytest.raises(DtypeError) as info:
        capture(program, dtype="float64")
    assert "LRN" in str(info.value) and "no float64 kernel" in str(info.value) and "\n" not in str(info.value)


def _leaky_program(written: str):
    def program():
        tf1 = tf.compat.v1
        dt = {"float32": tf.float32, "float64": tf.float64}[written]
        x = tf1.placeholder(dt, [None, 3], name="x")
        w = tf1.get_variable("w", [3, 4], dtype=dt)
        h = tf.nn.leaky_relu(tf.matmul(x, w), 0.2)
        weights = tf.constant([0.1, 0.2, 0.3, 0.7], dtype=dt)  # per-unit loss weights, short decimals
        loss = tf.reduce_sum(tf.square(h) * weights)
        opt = tf1.train.GradientDescentOptimizer(0.5)
        return {"inputs": {"x": x}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt}

    return program


def test_leaky_relu_alpha_and_array_constants_are_float64_decimals_in_the_float64_rebuild():
    from tf_impl.v1.capture import capture

    p = capture(_leaky_program("float32"), dtype="float64")
    try:
        rng = np.random.default_rng(1)
        w = rng.standard_normal((3, 4))
        p.load({"w": w})
        x = rng.standard_normal((5, 3))
        out = p.step({"x": x})
        # the same maths in float64 numpy, with the decimals the program was written with
        z = x @ w
        h = np.where(z > 0, z, 0.2 * z)
        weights = np.array([0.1, 0.2, 0.3, 0.7])
        grad = x.T @ (2 * h * weights * np.where(z > 0, 1.0, 0.2))
        # float64 of one matmul and a sum: ~1e-16; float32 alpha / weights would be 1e-8..3e-9 away
        assert _rel(out["loss"]["loss"], np.sum(h * h * weights)) < 1e-13
        assert _rel(out["gradients"]["w"], grad) < 1e-13
        notes = " ".join(p.notes())
        assert "LeakyRelu alpha = 0.2 (a float32 attribute: 0.20000000298023224)" in notes, notes
        assert "Const [4] = 0.1, 0.2, 0.3, 0.7" in notes, notes
    finally:
        p.close()


def test_program_written_in_float64_lists_its_float32_leaky_relu_alpha():
    from tf_impl.v1.capture import capture

    p = capture(_leaky_program("float64"), dtype="float64")
    try:
        notes = " ".join(p.notes())
        assert "alpha = float32(0.2) = 0.20000000298023224 (LeakyRelu's attribute)" in notes, notes
        assert "tf.maximum(x, alpha * x)" in notes
    finally:
        p.close()


def test_leaky_relu_example_agrees_with_its_torch_port_in_float64():
    pytest.importorskip("torch")
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(EXAMPLES, "tf1_leaky_mlp.py"), os.path.join(EXAMPLES, "torch_leaky_mlp.py"),
                              steps=2, dtypes=("float64",))
    (c,) = result.comparisons
    assert "forward" in set(c.worst_by_stage())
    assert c.ok, f"{c.verdict}, first divergence {c.first_divergence}"
    assert any("hidden/LeakyRelu alpha = 0.2" in n for n in result.notes), result.notes


def test_recurrent_example_reaches_a_verdict_in_both_dtypes_through_parity_diff(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "diff.json"
    proc = subprocess.run(
        [sys.executable, "-m", "parity", "diff", os.path.join(EXAMPLES, "tf1_char_lstm.py"),
         os.path.join(EXAMPLES, "torch_char_lstm.py"), "--steps", "2", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    # the port writes the cell in TF's fused layout: the two programs are the same maths, so they agree
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "f64 tf1 vs torch rounding" in proc.stdout and "f32 tf1 vs torch rounding" in proc.stdout, proc.stdout


# -- the same attribute in Keras (tf_impl/v2/capture/dtype.py): tf.nn.leaky_relu in a float64 run ----------------
@pytest.mark.parametrize("keras_name", ["tf_keras", "keras"])
def test_keras_leaky_relu_computes_with_a_float64_alpha_in_float64(keras_name):
    K = pytest.importorskip(keras_name)
    from tf_impl.v2.capture import capture

    def program():
        slope = {"alpha": 0.2} if keras_name == "tf_keras" else {"negative_slope": 0.2}
        model = K.Sequential([K.Input((3,)), K.layers.Dense(4, name="d1"), K.layers.LeakyReLU(name="leaky", **slope),
                              K.layers.Dense(2, name="d2")])
        return {"model": model, "optimizer": K.optimizers.SGD(0.5), "loss": K.losses.MeanSquaredError()}

    p = capture(program, dtype="float64")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    params = p.parameters()
    out = p.step({"x": x, "y": y})
    z = x @ params["d1/kernel"] + params["d1/bias"]
    h = np.where(z > 0, z, 0.2 * z)
    loss = np.mean((h @ params["d2/kernel"] + params["d2/bias"] - y) ** 2)
    # float64 of two small matmuls: ~1e-16 (measured 1e-16); TF's float32 alpha is ~3e-9 away
    assert _rel(out["forward"]["leaky"], h) < 1e-13
    assert _rel(out["loss"]["loss"], loss) < 1e-13
    assert any("LeakyReLU leaky alpha=0.2" in n for n in p.notes()), p.notes()


def test_array_constant_that_is_no_short_decimal_keeps_its_float32_values_and_is_listed_as_left():
    from tf_impl.v1.capture import capture

    table = np.float32([0.1234567, -1.7654321, 2.7182817])  # 7-digit values: no short decimal says what was meant

    def program():
        tf1 = tf.compat.v1
        x = tf1.placeholder(tf.float32, [None, 3], name="x")
        w = tf1.get_variable("w", [3])
        loss = tf.reduce_sum(tf.square(x * w - tf.constant(table, name="table")))
        opt = tf1.train.GradientDescentOptimizer(0.5)
        return {"inputs": {"x": x}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt}

    p = capture(program, dtype="float64")
    try:
        w, x = np.array([0.5, -0.25, 2.0]), np.array([[1.0, 2.0, 3.0]])
        p.load({"w": w})
        out = p.step({"x": x})
        # the float32 values, exactly (a decimal 0.1234567 would be 1e-8 relative away from them)
        assert _rel(out["loss"]["loss"], np.sum((x * w - table.astype(np.float64)) ** 2)) < 1e-14
        notes = " ".join(p.notes())
        assert "table [3] (an array constant, not short decimals: its float32 values kept)" in notes, notes
    finally:
        p.close()
