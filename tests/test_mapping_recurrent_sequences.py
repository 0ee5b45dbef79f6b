"""A bidirectional RNN's sequence output is compared with torch's (issue 24 item 1).

TF1's ``bidirectional_dynamic_rnn`` gives one sequence output per direction (the backward one reversed back to
input time order by TF), torch's ``nn.LSTM(bidirectional=True)`` one tensor, both directions concatenated on
the last axis [fw | bw]. The TF1 capture records the two as one output, ``bidirectional_rnn`` (fw and bw
concatenated, tf_impl/v1/capture/forward.py), which pairs with torch's ``lstm``, and a note says so. A Keras
``Bidirectional(LSTM(return_sequences=True))`` (merge_mode concat) records that concatenation itself and pairs
the same way. The right ports agree in float64 and float32; a port that reverses the time of its input diverges
at step 0 at the sequence output itself; one that swaps the halves or reverses the time of the sequence output it
reads diverges at step 0 at the head that reads it, the sequence output compared and agreeing before it.

The verdicts are parity's own: no tolerance is set here. TF1 programs: 30-90 s each on a busy 2-core machine.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("tensorflow")
pytestmark = [pytest.mark.torch, pytest.mark.tf]

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")
TF1, TORCH = os.path.join(EX, "tf1_bilstm_tagger.py"), os.path.join(EX, "torch_bilstm_tagger.py")
KERAS, KERAS_PORT = os.path.join(EX, "keras_bilstm_tagger.py"), os.path.join(EX, "torch_bilstm_steps.py")
READ = "return self.head(out.reshape(-1, 2 * HIDDEN))"


def _compare(ref: str, port: str, steps: int = 2, dtypes=("float64",)):
    from parity.program.prepare import compare_programs

    result = compare_programs(ref, port, steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}, result


def _planted(tmp_path, name: str, old: str, new: str) -> str:
    src = open(TORCH).read()
    assert old in src
    path = tmp_path / f"{name}.py"
    path.write_text(src.replace(old, new))
    return str(path)


def _forward_compared(c) -> set:
    return {d.name.split("[")[0] for d in c.diffs if d.stage == "forward"}


@pytest.fixture
def legacy_keras(monkeypatch):
    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell is a Keras 2 API


@pytest.mark.slow
def test_the_tf1_bidirectional_sequence_output_pairs_with_torchs_and_agrees(legacy_keras):
    by, result = _compare(TF1, TORCH, steps=2, dtypes=("float64", "float32"))
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues
        assert "bidirectional_rnn" in _forward_compared(c), _forward_compared(c)
    forward = dict(result.mapping.forward)
    assert forward["bidirectional_rnn"] == "lstm", forward  # [fw | bw] against torch's [fw | bw]
    assert forward["bidirectional_rnn/bw/bw/h"] == "lstm/h.1" and forward["head/BiasAdd"] == "head", forward
    # the per-direction sequence outputs are not outputs of their own any more: nothing left unpaired
    assert "reference layer outputs" not in result.mapping.not_compared, result.mapping.not_compared
    notes = " ".join(result.notes + list(getattr(result.mapping, "notes", [])))
    assert "bidirectional_rnn: bidirectional_dynamic_rnn's two sequence outputs recorded as one" in notes, notes


@pytest.mark.slow
def test_a_port_reversing_its_input_time_diverges_at_the_sequence_output(legacy_keras, tmp_path):
    port = _planted(tmp_path, "flip_input", "out, _ = self.lstm(x)", "out, _ = self.lstm(x.flip(1))")
    by, _ = _compare(TF1, port, steps=1)
    first = by["float64"].first
    assert first is not None and (first.step, first.stage, first.name.split("[")[0]) == (0, "forward", "bidirectional_rnn"), first


@pytest.mark.slow
@pytest.mark.parametrize("wrong", [
    # the halves swapped: [bw | fw]
    "out = torch.cat([out[..., HIDDEN:], out[..., :HIDDEN]], dim=-1)\n        " + READ,
    # the backward half taken for TF1's raw loop output (in reversed time) and reversed "back"
    "out = torch.cat([out[..., :HIDDEN], out[..., HIDDEN:].flip(1)], dim=-1)\n        " + READ,
], ids=["halves_swapped", "backward_time_reversed"])
def test_a_port_misreading_the_sequence_output_diverges_at_the_head(legacy_keras, tmp_path, wrong):
    port = _planted(tmp_path, "misread", READ, wrong)
    by, _ = _compare(TF1, port, steps=1)
    c = by["float64"]
    assert c.first is not None and (c.first.step, c.first.stage, c.first.name.split("[")[0]) == (0, "forward", "head/BiasAdd"), c.first
    # the sequence output itself was compared and agrees (the divergence is where the port reads it)
    assert "bidirectional_rnn" in _forward_compared(c)
    assert all(d.verdict != "semantic" for d in c.diffs if d.stage == "forward" and d.name.split("[")[0] == "bidirectional_rnn")


@pytest.mark.slow
@pytest.mark.parametrize("keras", ["keras3", "tf_keras"])
def test_a_keras_bidirectional_sequence_output_pairs_with_torchs_and_agrees(keras, tmp_path, monkeypatch):
    ref = KERAS
    if keras == "tf_keras":
        pytest.importorskip("tf_keras")
        monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
        ref = str(tmp_path / "tf_keras_bilstm_tagger.py")
        open(ref, "w").write(open(KERAS).read().replace("import tensorflow as tf\n", "import tensorflow as tf\nimport tf_keras\n")
                             .replace("tf.keras.", "tf_keras."))
    dtypes = ("float64", "float32") if keras == "keras3" else ("float64",)
    by, result = _compare(ref, KERAS_PORT, steps=2, dtypes=dtypes)
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {c.verdict} at {c.first}"
        assert "bidirectional" in _forward_compared(c)
    assert dict(result.mapping.forward)["bidirectional"] == "lstm"
    swapped = tmp_path / "torch_bilstm_steps_swapped.py"
    swapped.write_text(open(KERAS_PORT).read().replace(
        "return self.head(out).transpose(1, 2)",
        "out = torch.cat([out[..., HIDDEN:], out[..., :HIDDEN]], dim=-1)\n        return self.head(out).transpose(1, 2)"))
    first = _compare(ref, str(swapped), steps=1)[0]["float64"].first
    assert first is not None and (first.step, first.stage, first.name.split("[")[0]) == (0, "forward", "dense"), first


def test_the_capture_records_fw_and_the_bw_reversed_back_as_one_output_in_input_time_order(legacy_keras):
    # the recorded pair, fetched, is np.concatenate([out_fw, out_bw], -1) of what bidirectional_dynamic_rnn returns
    # (out_bw in input time order); the raw backward loop output (reversed time) is not recorded on its own
    import numpy as np
    import tensorflow.compat.v1 as tf

    from tf_impl.v1.capture.forward import bidirectional_names, fetch_tensor, forward_ops, layer_outputs

    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float64, [None, 5, 3])
        cells = [tf.nn.rnn_cell.BasicLSTMCell(4) for _ in range(2)]
        (fw, bw), _ = tf.nn.bidirectional_dynamic_rnn(cells[0], cells[1], x, dtype=tf.float64)
        loss = tf.reduce_sum(tf.concat([fw, bw], 2) ** 2)
        outputs, kinds = layer_outputs(forward_ops(g, [x], loss), [], [], [])
        assert bidirectional_names(outputs) == ["bidirectional_rnn"] and kinds["bidirectional_rnn"] == "rnn"
        assert "bidirectional_rnn/fw/fw" not in outputs and "bidirectional_rnn/bw/bw" not in outputs, list(outputs)
        assert list(outputs).index("bidirectional_rnn") < list(outputs).index("bidirectional_rnn/fw/fw/c")  # torch's order
        both = fetch_tensor(g.get_tensor_by_name, tf, outputs["bidirectional_rnn"])
        raw_bw = g.get_tensor_by_name(outputs["bidirectional_rnn"][1]).op.inputs[0]  # the loop's own, reversed time
        with tf.Session(graph=g) as sess:
            sess.run(tf.global_variables_initializer())
            got, f, b, raw = sess.run([both, fw, bw, raw_bw], {x: np.random.default_rng(0).normal(size=(2, 5, 3))})
    assert np.array_equal(got, np.concatenate([f, b], axis=-1))
    assert not np.allclose(raw, b) and np.array_equal(raw[:, ::-1], b)  # the raw one is b with time reversed
