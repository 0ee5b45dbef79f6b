"""Recurrent layers map automatically (issue 24 item 1, the mapping part): TF1 BasicLSTMCell and Keras LSTM
onto torch nn.LSTM, kernel split, transpose, gate permutation, TF1's run-time forget_bias and torch's second
bias accounted for exactly; a mapping without the forget_bias or with the gates in the wrong order, and a port
that trains both of torch's biases, diverge; TF1 GRUCell is refused (pitfall gru-reset-after).

The comparison here is the mapping's own (:meth:`Mapping_.canonical` on each side's recorded step), so it
checks the layout maths alone: both programs start from the reference's weights, take the same batches,
and every stage in report names must agree.
"""

import os

import numpy as np
import pytest

from parity.errors import ParityError
from parity.program.load import capture
from parity.program.mapping import Mapping_, format_table
from parity.program.prepare import compare_programs, prepare

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")
TF1, KERAS, TORCH, TWO_BIASES = (os.path.join(EX, f) for f in ("tf1_lstm.py", "keras_lstm.py", "torch_lstm.py",
                                                                "torch_lstm_two_biases.py"))
#: float64, the same products in another order (5 LSTM steps, a Dense head, momentum SGD, 2 steps): measured
#: worst relative difference 1.4e-15 (TF1) and 1.1e-15 (Keras); 1e-9 leaves room for another BLAS's summation
#: order; a mapping mistake (forget_bias or gate order left out) measured 1.9e-2 on the loss.
RTOL = 1e-9


@pytest.fixture(autouse=True)
def _legacy_keras(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell / tf.layers under TF 2.21


def _steps(ref, port, mapping=None, steps=2):
    """Each side's stages per step, in report names and the canonical layout, from the same start."""
    run = prepare(ref, port, steps=steps, mapping=mapping)
    m = run.mapping
    R, P = capture(run.reference, "float64"), capture(run.port, "float64")
    try:
        R.load({k: v for k, v in run.initial.items() if k in m.views("reference")})
        P.load(m.port_weights(run.initial))
        out = []
        for batch in run.batches:
            b = {k: v for k, v in batch.items() if not k.startswith("__")}
            ra, pa = R.step(b, {}), P.step(b, {})
            out.append({stage: (m.canonical("reference", ra[stage], stage, trainable_only=stage != "parameters"),
                                m.canonical("port", pa[stage], stage, trainable_only=stage != "parameters"))
                        for stage in ("gradients", "parameters", "slots") if stage in ra and stage in pa}
                       | {"loss": ({"loss": ra["loss"]["loss"]}, {"loss": pa["loss"]["loss"]})})
        return run, out
    finally:
        R.close()
        P.close()


def _worst(out):
    """{(step, stage, name): relative difference} over the names both sides report."""
    diffs = {}
    for i, stages in enumerate(out):
        for stage, (a, b) in stages.items():
            for name in sorted(set(a) & set(b)):
                x, y = np.asarray(a[name], float), np.asarray(b[name], float)
                scale = max(np.max(np.abs(x), initial=0), np.max(np.abs(y), initial=0), 1e-300)
                diffs[(i, stage, name)] = float(np.max(np.abs(x - y), initial=0) / scale)
    return diffs


@pytest.mark.parametrize("ref", [TF1, KERAS], ids=["tf1-BasicLSTMCell", "keras-LSTM"])
def test_lstm_maps_onto_nn_lstm_and_trains_the_same(ref):
    run, out = _steps(ref, TORCH)
    diffs = _worst(out)
    names = {name for _, _, name in diffs}
    assert any(":input" in n for n in names) or ref == KERAS
    assert any(n.endswith("recurrent") or n.endswith("recurrent_kernel") for n in names)
    assert {st for _, st, _ in diffs} >= {"gradients", "parameters", "slots", "loss"}
    bad = {k: v for k, v in diffs.items() if v > RTOL}
    assert not bad, bad


_VARIANTS = {  # (reference edit, port edit) of tf1_lstm.py / torch_lstm.py
    "MultiRNNCell-2-layers": (
        [("tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "tf.nn.rnn_cell.MultiRNNCell([tf.nn.rnn_cell.BasicLSTMCell(HIDDEN), "
          "tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)])")],
        [("batch_first=True)", "num_layers=2, batch_first=True)"),
         ("self.lstm.bias_hh_l0.zero_()", "self.lstm.bias_hh_l0.zero_(); self.lstm.bias_hh_l1.zero_()"),
         ("self.lstm.bias_hh_l0.requires_grad_(False)", "self.lstm.bias_hh_l0.requires_grad_(False); "
          "self.lstm.bias_hh_l1.requires_grad_(False)")]),
    "BasicRNNCell-nn.RNN": ([("BasicLSTMCell", "BasicRNNCell")], [("nn.LSTM(", "nn.RNN(")]),
}


def _variant(path, edits, where):
    text = open(path).read()
    for a, b in edits:
        assert a in text, a
        text = text.replace(a, b)
    where.write_text(text)
    return str(where)


@pytest.mark.parametrize("variant", sorted(_VARIANTS))
def test_stacked_lstm_and_plain_rnn_cells_map_and_train_the_same(variant, tmp_path):
    ref_edits, port_edits = _VARIANTS[variant]
    run, out = _steps(_variant(TF1, ref_edits, tmp_path / "ref.py"), _variant(TORCH, port_edits, tmp_path / "port.py"))
    names = {e.canonical for e in run.mapping.params}
    assert sum(n.endswith(":recurrent") for n in names) == (2 if "Multi" in variant else 1)
    bad = {k: v for k, v in _worst(out).items() if v > RTOL}  # measured worst 2.7e-14 (2 layers), 8.3e-16 (RNN)
    assert not bad, bad


def test_the_mapping_table_says_how_the_lstm_maps():
    run = prepare(TF1, TORCH, steps=1)
    table = format_table(run.mapping)
    assert "rnn/basic_lstm_cell/kernel:input      lstm.weight_ih_l0  3x16" in table  # the name in the report
    assert "rows:0:3 gates:ijfo>ifjo / T" in table and "rows:3:7 gates:ijfo>ifjo / T" in table
    assert "gates:ijfo>ifjo forget_bias:1 / -" in table and "rnn/basic_lstm_cell/bias:second" in table
    assert any("forget_bias taken as 1.0" in n for n in run.mapping.notes)


def _edited(op_from, op_to, tmp_path):
    run = prepare(TF1, TORCH, steps=1)
    data = run.mapping.to_json()
    for e in data["params"]:
        e["reference_ops"] = [o for o in (op_to if o == op_from else o for o in e["reference_ops"]) if o]
    return Mapping_.from_json(data)


@pytest.mark.parametrize("edit", [("forget_bias:1", ""), ("gates:ijfo>ifjo", "")], ids=["no-forget-bias", "gate-order"])
def test_a_mapping_without_the_forget_bias_or_the_gate_order_diverges(edit, tmp_path):
    _, out = _steps(TF1, TORCH, mapping=_edited(*edit, tmp_path), steps=1)
    assert _worst(out)[(0, "loss", "loss")] > 1e-4  # measured 1.9e-2 (both edits); rounding is 1e-15


def test_a_port_training_both_biases_diverges_at_the_second_bias():
    run, out = _steps(TF1, TWO_BIASES)
    assert any("twice as fast" in n for n in run.mapping.notes)
    diffs = _worst(out)
    assert diffs[(0, "gradients", "rnn/basic_lstm_cell/bias:second")] <= RTOL  # each bias's gradient is TF's
    assert diffs[(0, "parameters", "rnn/basic_lstm_cell/bias:second")] == 1.0  # TF: 0; torch: moved (b_hh)
    assert diffs[(1, "gradients", "rnn/basic_lstm_cell/bias")] > 1e-6  # then the gates see another bias (1.2e-3 measured)


def test_tf1_gru_cell_is_refused_naming_the_pitfall(tmp_path):
    ref = tmp_path / "tf1_gru.py"
    ref.write_text(open(TF1).read().replace("tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "tf.nn.rnn_cell.GRUCell(HIDDEN)"))
    port = tmp_path / "torch_gru.py"
    port.write_text(open(TORCH).read().replace("nn.LSTM(FEATURES, HIDDEN, batch_first=True)", "nn.GRU(FEATURES, HIDDEN, batch_first=True)"))
    with pytest.raises(ParityError) as e:
        prepare(str(ref), str(port), steps=1)
    assert "gru-reset-after" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("ref", [TF1, KERAS], ids=["tf1-BasicLSTMCell", "keras-LSTM"])
def test_parity_diff_agrees_on_the_right_lstm_port(ref):
    r = compare_programs(ref, TORCH, steps=3, dtypes=("float64",))
    assert r.passed, [c.first_divergence for c in r.comparisons]


def test_parity_diff_finds_the_second_bias_trained():
    r = compare_programs(TF1, TWO_BIASES, steps=3, dtypes=("float64",))
    d = r.comparisons[0].first_divergence
    assert not r.passed and (d.step, d.stage, d.kind) == (0, "parameters", "semantic")
    assert d.name == "rnn/basic_lstm_cell/bias:second"
