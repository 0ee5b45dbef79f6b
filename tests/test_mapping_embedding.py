"""Embeddings map automatically and are trained (issue 24 item 2, the mapping part): a TF1
``tf.nn.embedding_lookup`` table (sparse gradient: IndexedSlices; sparse apply op) pairs with torch's
``nn.Embedding``; its raw and applied gradients are densified to the table's shape, so its gradient,
update and slots are compared. A lazy sparse update that a dense port does not make (momentum: TF moves
the looked-up rows only) diverges at the step after the first.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_mapping_rnn import RTOL, _steps, _worst  # noqa: E402  (the mapping-level harness)

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "embedding")
TF1, TORCH = os.path.join(EX, "tf1_embedding.py"), os.path.join(EX, "torch_embedding.py")


@pytest.fixture(autouse=True)
def _legacy_keras(monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")  # tf.layers under TF 2.21


def test_embedding_lookup_maps_onto_nn_embedding_and_trains_the_same():
    run, out = _steps(TF1, TORCH, steps=3)
    e = run.mapping.by_reference()["embedding/W"]
    assert (e.port, e.kind, e.trainable) == ("embedding.weight", "embedding", True)
    assert any("densified" in n for n in run.notes)
    diffs = _worst(out)
    assert {(st, n) for _, st, n in diffs} >= {("gradients", "embedding/W"), ("parameters", "embedding/W"),
                                               ("slots", "embedding/W/accumulator")}
    bad = {k: v for k, v in diffs.items() if v > RTOL}  # measured worst 5e-16
    assert not bad, bad


def test_a_lazy_sparse_momentum_against_a_dense_one_diverges_at_the_second_step(tmp_path):
    ref = tmp_path / "tf1_embedding_momentum.py"
    ref.write_text(open(TF1).read().replace("tf.train.AdagradOptimizer(0.5)", "tf.train.MomentumOptimizer(0.5, 0.9)"))
    port = tmp_path / "torch_embedding_momentum.py"
    port.write_text(open(TORCH).read().replace(
        "torch.optim.Adagrad(model.parameters(), lr=0.5, initial_accumulator_value=0.1, eps=0.0)",
        "torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)"))
    _, out = _steps(str(ref), str(port), steps=2)
    diffs = _worst(out)
    assert diffs[(0, "parameters", "embedding/W")] <= RTOL  # the first step: the same rows move the same
    assert diffs[(1, "gradients", "embedding/W")] <= RTOL
    # then torch's dense momentum moves rows this batch did not look up; TF's sparse one does not (2.5e-2 measured)
    assert diffs[(1, "parameters", "embedding/W")] > 1e-3
