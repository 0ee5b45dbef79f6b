"""Every recurrent form of issue 24 (Deliver 1) maps automatically and agrees with its torch port in float64 and
float32 (2 steps): TF1 ``dynamic_rnn`` over ``BasicRNNCell`` / ``LSTMCell`` / ``MultiRNNCell`` / a
``DropoutWrapper`` that keeps everything, a torch port looping ``nn.LSTMCell``, Keras ``SimpleRNN`` (tf_keras and
Keras 3) onto ``nn.RNN``, encoder-decoder models of two input sequences (TF1 and Keras: the decoder started from
the encoder's final state), and TF1's ``GRUCell`` against a port that writes the cell out (an ``nn.GRU`` port is
refused in one line that says what to write). The variants are string edits of examples/rnn/ (as
tests/test_mapping_rnn.py makes them). Verdicts are parity's own: no tolerance is set here.
"""

from __future__ import annotations

import os

import pytest

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")


def _spec(name, shape, kind, layer):
    from parity.portkit.program import ParamSpec

    return ParamSpec(name, tuple(shape), kind, layer, True)


def test_a_keras_simple_rnn_maps_onto_nn_rnn_although_its_recurrent_kernel_is_square():
    # SimpleRNN(4) on 3 features: kernel [3, 4], recurrent_kernel [4, 4]; torch weight_ih [4, 3], weight_hh [4, 4].
    # A square recurrent kernel does not say which side's layout it is: the side does (it was read as torch's).
    from parity.program.mapping.recurrent import recurrent_entries

    ref = [_spec("simple_rnn/simple_rnn_cell/kernel", (3, 4), "lstm_kernel", "simple_rnn/simple_rnn_cell"),
           _spec("simple_rnn/simple_rnn_cell/recurrent_kernel", (4, 4), "lstm_recurrent", "simple_rnn/simple_rnn_cell"),
           _spec("simple_rnn/simple_rnn_cell/bias", (4,), "lstm_bias", "simple_rnn/simple_rnn_cell")]
    port = [_spec(f"rnn.{n}", s, k, "rnn") for n, s, k in (("weight_ih_l0", (4, 3), "lstm_kernel"),
                                                          ("weight_hh_l0", (4, 4), "lstm_recurrent"),
                                                          ("bias_ih_l0", (4,), "lstm_bias"), ("bias_hh_l0", (4,), "lstm_bias"))]
    entries, _, used_r, used_p = recurrent_entries(ref, "tf2", port, "torch")
    pairs = {e.reference: e.port for e in entries if not e.name.endswith(":second")}
    assert pairs == {"simple_rnn/simple_rnn_cell/kernel": "rnn.weight_ih_l0",
                     "simple_rnn/simple_rnn_cell/recurrent_kernel": "rnn.weight_hh_l0",
                     "simple_rnn/simple_rnn_cell/bias": "rnn.bias_ih_l0"}, pairs
    assert {tuple(e.shape) for e in entries if e.kind == "lstm_kernel"} == {(3, 4)}


pytest.importorskip("torch")
pytest.importorskip("tensorflow")


def _edit(tmp_path, src: str, name: str, edits) -> str:
    text = open(os.path.join(EX, src)).read()
    for a, b in edits:
        assert a in text, (src, a)
        text = text.replace(a, b)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


_DYNAMIC = [("outputs, _ = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=x.dtype)",
             "outputs, _ = tf.nn.dynamic_rnn(cell, x, dtype=x.dtype)"), ("outputs[-1]", "outputs[:, -1]")]
_TWO_LAYERS = [("batch_first=True)", "num_layers=2, batch_first=True)"),
               ("self.lstm.bias_hh_l0.zero_()", "self.lstm.bias_hh_l0.zero_(); self.lstm.bias_hh_l1.zero_()"),
               ("self.lstm.bias_hh_l0.requires_grad_(False)",
                "self.lstm.bias_hh_l0.requires_grad_(False); self.lstm.bias_hh_l1.requires_grad_(False)")]
_LSTM_CELL_LOOP = [("        out, _ = self.lstm(x)\n        return self.head(out[:, -1])",
                    "        h = x.new_zeros(x.shape[0], HIDDEN)\n        c = x.new_zeros(x.shape[0], HIDDEN)\n"
                    "        for t in range(x.shape[1]):\n            h, c = self.lstm(x[:, t], (h, c))\n"
                    "        return self.head(h)"),
                   ("nn.LSTM(FEATURES, HIDDEN, batch_first=True)", "nn.LSTMCell(FEATURES, HIDDEN)"), ("bias_hh_l0", "bias_hh")]
_TF_KERAS = [("import tensorflow as tf\n", "import tensorflow as tf\nimport tf_keras\n"), ("tf.keras.", "tf_keras.")]
_PER_STEP = [("return self.head(outputs.reshape(-1, HIDDEN))", "return self.head(outputs).transpose(1, 2)"),
             ("size=8 * TGT)", "size=(8, TGT))")]  # the Keras model's head per step: [N, TGT, CLASSES], labels [N, TGT]

#: name -> (reference file, reference edits, port file, port edits, layer-output pairs that must be compared)
FORMS = {
    "tf1-dynamic-BasicRNNCell/nn.RNN": ("tf1_lstm.py", _DYNAMIC + [("BasicLSTMCell", "BasicRNNCell")],
                                        "torch_lstm.py", [("nn.LSTM(", "nn.RNN(")], {"rnn": "lstm", "rnn/h": "lstm/h"}),
    "tf1-dynamic-LSTMCell/nn.LSTM": ("tf1_lstm.py", _DYNAMIC + [("BasicLSTMCell", "LSTMCell")], "torch_lstm.py", [],
                                     {"rnn": "lstm", "rnn/c": "lstm/c", "rnn/h": "lstm/h"}),
    "tf1-dynamic-MultiRNNCell/nn.LSTM(num_layers=2)": (
        "tf1_lstm.py", _DYNAMIC + [("tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "tf.nn.rnn_cell.MultiRNNCell("
                                    "[tf.nn.rnn_cell.BasicLSTMCell(HIDDEN), tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)])")],
        "torch_lstm.py", _TWO_LAYERS, {"rnn/c.1": "lstm/c.1", "rnn/h.1": "lstm/h.1"}),
    "tf1-DropoutWrapper(keep 1)/nn.LSTM": (
        "tf1_lstm.py", _DYNAMIC + [("cell = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "cell = tf.nn.rnn_cell.DropoutWrapper("
                                    "tf.nn.rnn_cell.BasicLSTMCell(HIDDEN), output_keep_prob=1.0)")],
        "torch_lstm.py", [], {"rnn": "lstm"}),
    "tf1-dynamic-BasicLSTMCell/nn.LSTMCell-loop": ("tf1_lstm.py", _DYNAMIC, "torch_lstm.py", _LSTM_CELL_LOOP,
                                                   {"head/BiasAdd": "head"}),
    "keras3-LSTM/nn.LSTM": ("keras_lstm.py", [], "torch_lstm.py", [], {"lstm": "lstm/h", "dense": "head"}),
    "keras3-SimpleRNN/nn.RNN": ("keras_lstm.py", [("layers.LSTM(", "layers.SimpleRNN(")], "torch_lstm.py",
                                [("nn.LSTM(", "nn.RNN(")], {"simple_rnn": "lstm/h"}),
    "tf_keras-SimpleRNN/nn.RNN": ("keras_lstm.py", _TF_KERAS + [("layers.LSTM(", "layers.SimpleRNN(")], "torch_lstm.py",
                                  [("nn.LSTM(", "nn.RNN(")], {"simple_rnn": "lstm/h"}),
    # two input sequences: the decoder starts from the encoder's final state (TF1: a dynamic_rnn whose initial
    # state is another's, still recorded as an LSTM's (c, h))
    "tf1-encoder-decoder/two-nn.LSTM": ("tf1_seq2seq.py", [], "torch_seq2seq.py", [],
                                        {"encoder/rnn/h": "encoder/h", "decoder/rnn": "decoder", "decoder/rnn/c": "decoder/c",
                                         "decoder/rnn/h": "decoder/h"}),
    "keras3-encoder-decoder/two-nn.LSTM": ("keras_seq2seq.py", [], "torch_seq2seq.py", _PER_STEP,
                                           {"decoder": "decoder", "head": "head", "encoder/c": "encoder/c",
                                            "encoder/h": "encoder/h"}),
    "tf_keras-encoder-decoder/two-nn.LSTM": ("keras_seq2seq.py", _TF_KERAS, "torch_seq2seq.py", _PER_STEP,
                                             {"decoder": "decoder", "head": "head", "encoder/c": "encoder/c",
                                              "encoder/h": "encoder/h"}),
    "tf1-GRUCell/the-cell-written-out": ("tf1_gru.py", [], "torch_gru_cell.py", [], {"head/BiasAdd": "head"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_recurrent_form_maps_and_agrees_in_both_dtypes(form, tmp_path, monkeypatch):
    from parity.program.prepare import compare_programs

    ref, ref_edits, port, port_edits, outputs = FORMS[form]
    if form.startswith(("tf1", "tf_keras")):
        pytest.importorskip("tf_keras")
        monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell / tf.layers, and tf_keras
    ref = _edit(tmp_path, ref, "ref_" + ref, ref_edits)
    port = _edit(tmp_path, port, "port_" + port, port_edits)
    result = compare_programs(ref, port, steps=2, dtypes=("float64", "float32"))
    by = {c.dtype: c for c in result.comparisons}
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues
    forward = dict(result.mapping.forward)
    assert {a: forward.get(a) for a in outputs} == outputs, forward
    compared = {d.name.split("[")[0] for d in by["float64"].diffs if d.stage == "forward"}
    assert set(outputs) <= compared, compared


def test_tf1_gru_cell_against_nn_gru_is_refused_saying_what_to_write(tmp_path, monkeypatch):
    from parity.errors import ParityError
    from parity.program.prepare import prepare

    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    port = _edit(tmp_path, "torch_gru.py", "torch_gru.py", [])
    with pytest.raises(ParityError) as e:
        prepare(os.path.join(EX, "tf1_gru.py"), port, steps=1)
    msg = str(e.value)
    assert "\n" not in msg and "gru-reset-after" in msg, msg
    assert "write TF1's cell out in torch" in msg and "examples/rnn/torch_gru_cell.py" in msg, msg


@pytest.mark.slow
def test_a_written_out_gru_cell_with_its_gates_swapped_diverges_at_step0(tmp_path, monkeypatch):
    from parity.program.prepare import compare_programs

    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    port = _edit(tmp_path, "torch_gru_cell.py", "torch_gru_cell_swapped.py",
                 [("r, u = torch.sigmoid(", "u, r = torch.sigmoid(")])  # nn.GRU's order is r, z: TF1's r, u
    c = compare_programs(os.path.join(EX, "tf1_gru.py"), port, steps=1, dtypes=("float64",)).comparisons[0]
    assert not c.ok and c.first is not None and (c.first.step, c.first.stage) == (0, "forward"), c.first


# a Keras 3 train_step that calls optimizer.apply(grads, variables) directly (examples/rnn/keras_lstm.py's model)
_KERAS3_APPLY = '''\
import numpy as np
import tensorflow as tf
import keras

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2
loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def build_model():
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.LSTM(HIDDEN), keras.layers.Dense(CLASSES)])
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    return model, opt


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


def parity_program():
    model, opt = build_model()

    def train_step(batch):
        with tf.GradientTape() as tape:
            loss = loss_fn(batch["y"], model(batch["x"], training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply(grads, model.trainable_variables)
        return loss
    return {"model": model, "optimizer": opt, "train_step": train_step, "inputs": ["x"], "targets": ["y"], "data": batches}
'''


def test_a_keras3_train_step_calling_optimizer_apply_compares_what_apply_received(tmp_path):
    # Keras 3's opt.apply(grads, variables) called directly: the gradients, processed gradients and rate it received
    # are recorded as apply_gradients' are (before: "not compared: processed gradients (only torch reports it)")
    from parity.program.prepare import compare_programs

    ref = tmp_path / "keras_lstm_apply.py"
    ref.write_text(_KERAS3_APPLY)
    c = compare_programs(str(ref), os.path.join(EX, "torch_lstm.py"), steps=2, dtypes=("float64",)).comparisons[0]
    assert c.ok, c.first
    assert {"processed_gradients", "learning_rate"} <= {d.stage for d in c.diffs}
