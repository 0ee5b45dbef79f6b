"""A TF1 bidirectional RNN (``tf.nn.bidirectional_dynamic_rnn`` with a forward and a backward BasicLSTMCell /
LSTMCell) maps automatically onto torch ``nn.LSTM(bidirectional=True)`` (issue 24 item 1): the forward cell onto
the ``_l0`` weights, the backward cell onto the ``_l0_reverse`` ones, each with TF1's fused-kernel split, gate
permutation and run-time forget_bias (parity/program/mapping/recurrent.py). The two final states (c, h) of
each direction are recorded on both sides and compared, although the loss reads only the final h's (the
sequence outputs of a TF1 control-flow loop are recorded even where the loss does not read them); a port whose
head reads the directions swapped diverges at step 0; bidirectional GRUCells are refused in one line (TF1's
GRUCell is not nn.GRU's maths: pitfall gru-reset-after).

The verdicts are parity's own: no tolerance is set here. TF1 programs: 20-60 s each on a busy 2-core machine.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("tensorflow")
pytestmark = [pytest.mark.torch, pytest.mark.tf]

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")
TF1, TORCH = os.path.join(EX, "tf1_bilstm.py"), os.path.join(EX, "torch_bilstm.py")


@pytest.fixture(autouse=True)
def _legacy_keras(monkeypatch):
    pytest.importorskip("tf_keras")
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell is a Keras 2 API


def _compare(ref: str, port: str, steps: int = 2, dtypes=("float64",)):
    from parity.program.prepare import compare_programs

    result = compare_programs(ref, port, steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}, result


@pytest.mark.slow
def test_a_tf1_bidirectional_lstm_maps_direction_by_direction_and_agrees():
    by, result = _compare(TF1, TORCH, steps=3, dtypes=("float64", "float32"))
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues
    pairs = {e.reference: e.port for e in result.mapping.params}
    assert pairs["bidirectional_rnn/fw/basic_lstm_cell/kernel"] in ("lstm.weight_ih_l0", "lstm.weight_hh_l0")
    assert pairs["bidirectional_rnn/bw/basic_lstm_cell/kernel"] in ("lstm.weight_ih_l0_reverse", "lstm.weight_hh_l0_reverse")
    assert pairs["bidirectional_rnn/bw/basic_lstm_cell/bias"] in ("lstm.bias_ih_l0_reverse", "lstm.bias_hh_l0_reverse")
    # each direction's final state, recorded on both sides and paired: forward -> h_n[0], backward -> h_n[1]
    forward = dict(result.mapping.forward)
    assert forward["bidirectional_rnn/fw/fw/c"] == "lstm/c" and forward["bidirectional_rnn/fw/fw/h"] == "lstm/h"
    assert forward["bidirectional_rnn/bw/bw/c"] == "lstm/c.1" and forward["bidirectional_rnn/bw/bw/h"] == "lstm/h.1"
    compared = {d.name.split("[")[0] for d in by["float64"].diffs if d.stage == "forward"}
    assert {"bidirectional_rnn/fw/fw/h", "bidirectional_rnn/bw/bw/h"} <= compared, compared


@pytest.mark.slow
def test_a_port_reading_the_directions_swapped_diverges_at_step0(tmp_path):
    swapped = tmp_path / "torch_bilstm_swapped.py"  # the head reads (backward, forward): not TF's concatenation
    src = open(TORCH).read()
    swapped.write_text(src.replace("torch.cat([h[0], h[1]], dim=1)", "torch.cat([h[1], h[0]], dim=1)"))
    by, _ = _compare(TF1, str(swapped), steps=1)
    c = by["float64"]
    assert not c.ok and c.first is not None and c.first.step == 0, c.first
    # the recurrent states agree (the weights are mapped direction by direction); the head's output does not
    assert (c.first.stage, c.first.name.split("[")[0]) == ("forward", "head/BiasAdd"), c.first


@pytest.mark.slow
def test_tf1_lstm_cells_map_like_basic_lstm_cells(tmp_path):
    ref = tmp_path / "tf1_bilstm_lstmcell.py"
    src = open(TF1).read()
    ref.write_text(src.replace("tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "tf.nn.rnn_cell.LSTMCell(HIDDEN)"))
    by, result = _compare(str(ref), TORCH, steps=2)
    c = by["float64"]
    assert c.ok and not c.issues, (c.verdict, c.first, c.issues)
    pairs = {e.reference: e.port for e in result.mapping.params}
    assert pairs["bidirectional_rnn/bw/lstm_cell/bias"] in ("lstm.bias_ih_l0_reverse", "lstm.bias_hh_l0_reverse")


def test_tf1_bidirectional_gru_cells_are_refused_in_one_line(tmp_path):
    from parity.errors import ParityError
    from parity.program.prepare import prepare

    ref = tmp_path / "tf1_bigru.py"
    src = open(TF1).read()
    ref.write_text(src.replace("tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)", "tf.nn.rnn_cell.GRUCell(HIDDEN)")
                   .replace("state_fw.h, state_bw.h", "state_fw, state_bw"))
    port = tmp_path / "torch_bigru.py"
    port.write_text(open(TORCH).read().replace("nn.LSTM(", "nn.GRU(").replace("_, (h, _) = self.lstm(x)", "_, h = self.lstm(x)"))
    with pytest.raises(ParityError) as e:
        prepare(str(ref), str(port), steps=1)
    assert "gru-reset-after" in str(e.value) and "\n" not in str(e.value), e.value
