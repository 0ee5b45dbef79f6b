"""TF1 ``static_rnn`` (the cell unrolled in the graph) records its final state like ``dynamic_rnn``
(``scope/c``, ``scope/h``): paired with torch ``nn.LSTM``'s ``name/c``, ``name/h`` and compared, so a
mapping mistake inside the LSTM is found at its output, at step 0, forward; the ops inside the cell are
not layer outputs of their own.
"""

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.mapping import Mapping_  # noqa: E402
from parity.program.prepare import compare_programs, prepare  # noqa: E402

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rnn")
TF1, TORCH = os.path.join(EX, "tf1_lstm.py"), os.path.join(EX, "torch_lstm.py")


@pytest.fixture(autouse=True)
def _legacy_keras(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell / tf.layers under TF 2.21


def _f64(r):
    return next(c for c in r.comparisons if c.dtype == "float64")


@pytest.mark.slow
def test_static_rnn_final_state_pairs_with_nn_lstm_state_and_agrees():
    r = compare_programs(TF1, TORCH, steps=2, dtypes=("float64",))
    assert ("rnn/c", "lstm/c") in r.mapping.forward and ("rnn/h", "lstm/h") in r.mapping.forward
    assert ("head/BiasAdd", "head") in r.mapping.forward  # the head after it keeps its place in call order
    assert not any("basic_lstm_cell/" in a for a, _ in r.mapping.forward)  # no cell-internal op
    c = _f64(r)
    assert c.ok and c.worst_rel() < 1e-10  # float64: measured ~1e-15 (rounding); 1e-10 the float64 semantic line


@pytest.mark.slow
def test_a_mapping_without_the_forget_bias_diverges_at_the_lstm_state():
    data = prepare(TF1, TORCH, steps=1).mapping.to_json()
    for e in data["params"]:
        e["reference_ops"] = [o for o in e["reference_ops"] if not o.startswith("forget_bias")]
    d = _f64(compare_programs(TF1, TORCH, steps=1, dtypes=("float64",), mapping=Mapping_.from_json(data))).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and d.name.startswith("rnn/"), d and d.describe()
