"""Keras GRU maps automatically onto torch nn.GRU (issue 24 item 1): reset_after=True is torch's maths; the
kernels transposed and their gates permuted (Keras z, r, h; torch r, z, n), the Keras bias [2, 3H] split in
its input and recurrent rows (torch's bias_ih, bias_hh). tf_keras and Keras 3 agree with the port in
float64; a mapping without the gate permutation diverges; reset_after=False is refused in one line.
"""

import os

import numpy as np
import pytest

from parity.errors import ParityError
from parity.program.mapping import Mapping_, apply_ops, format_table, invert_ops
from parity.program.mapping.ops import check_ops

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")
KERAS, TORCH = os.path.join(EX, "keras_gru.py"), os.path.join(EX, "torch_gru.py")


def test_the_row_op_takes_one_row_and_has_no_inverse():
    b = np.arange(12.0).reshape(2, 6)
    assert np.array_equal(apply_ops(["row:1"], b), b[1])
    check_ops(["row:0", "gates:rzn>zrn"])
    with pytest.raises(ParityError, match="row:i"):
        check_ops(["row:x"])
    with pytest.raises(ParityError, match="no inverse"):
        invert_ops(["row:0"])
    # torch r, z, n -> Keras z, r, n and back
    w = np.concatenate([np.full((2, 1), g) for g in (1.0, 2.0, 3.0)], axis=1)  # r=1, z=2, n=3
    assert apply_ops(["gates:rzn>zrn"], w)[0].tolist() == [2.0, 1.0, 3.0]
    assert np.array_equal(apply_ops(invert_ops(["gates:rzn>zrn"]), apply_ops(["gates:rzn>zrn"], w)), w)


pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.prepare import compare_programs, prepare  # noqa: E402


def _tf_keras(tmp_path):
    ref = tmp_path / "tf_keras_gru.py"
    ref.write_text(open(KERAS).read().replace("import tensorflow as tf\n", "import tensorflow as tf\nimport tf_keras\n")
                   .replace("tf.keras.", "tf_keras."))
    return str(ref)


def _f64(r):
    return next(c for c in r.comparisons if c.dtype == "float64")


@pytest.mark.slow
@pytest.mark.parametrize("keras", ["keras3", "tf_keras"])
def test_keras_gru_maps_onto_nn_gru_and_trains_the_same(keras, tmp_path):
    ref = KERAS if keras == "keras3" else _tf_keras(tmp_path)
    r = compare_programs(ref, TORCH, steps=3, dtypes=("float64",))
    c = _f64(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    # float64: measured 5e-16 relative (Keras 3, 3 steps); 1e-10 is the harness's float64 semantic line
    assert c.worst_rel() < 1e-10
    table = format_table(r.mapping)
    assert "gates:rzn>zrn" in table and "row:0 / gates:rzn>zrn" in table and "row:1 / gates:rzn>zrn" in table


@pytest.mark.slow
def test_a_mapping_without_the_gate_permutation_diverges():
    data = prepare(KERAS, TORCH, steps=1).mapping.to_json()
    for e in data["params"]:
        e["port_ops"] = [o for o in e["port_ops"] if not o.startswith("gates:")]
    r = compare_programs(KERAS, TORCH, steps=2, dtypes=("float64",), mapping=Mapping_.from_json(data))
    d = _f64(r).first_divergence
    assert d is not None and d.step == 0, d and d.describe()


def test_reset_after_false_is_refused_in_one_line(tmp_path):
    ref = tmp_path / "keras_gru_reset_before.py"
    ref.write_text(open(KERAS).read().replace("tf.keras.layers.GRU(HIDDEN)", "tf.keras.layers.GRU(HIDDEN, reset_after=False)"))
    with pytest.raises(ParityError) as e:
        prepare(str(ref), TORCH, steps=1)
    assert "reset_after=False" in str(e.value) and "gru-reset-after" in str(e.value) and "\n" not in str(e.value)


# -- Bidirectional (Keras Bidirectional(LSTM) <-> nn.LSTM(bidirectional=True)) --------------------------
BI_KERAS, BI_TORCH = os.path.join(EX, "keras_bilstm.py"), os.path.join(EX, "torch_bilstm.py")


@pytest.mark.slow
def test_a_bidirectional_lstm_maps_direction_by_direction_and_a_swapped_port_diverges(tmp_path):
    r = compare_programs(BI_KERAS, BI_TORCH, steps=2, dtypes=("float64",))
    c = _f64(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # measured 2e-15 (float64, 3 steps); 1e-10 is the harness's float64 semantic line
    pairs = {e.reference: e.port for e in r.mapping.params}
    assert pairs["bidirectional/backward_lstm/lstm_cell/kernel"] == "lstm.weight_ih_l0_reverse"
    assert pairs["bidirectional/forward_lstm/lstm_cell/kernel"] == "lstm.weight_ih_l0"
    swapped = tmp_path / "torch_bilstm_swapped.py"  # the head reads (backward, forward): not Keras's concatenation
    swapped.write_text(open(BI_TORCH).read().replace("torch.cat([h[0], h[1]], dim=1)", "torch.cat([h[1], h[0]], dim=1)"))
    d = _f64(compare_programs(BI_KERAS, str(swapped), steps=2, dtypes=("float64",))).first_divergence
    assert d is not None and d.step == 0, d and d.describe()
