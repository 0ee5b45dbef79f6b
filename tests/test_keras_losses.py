"""Keras losses as Keras 2 programs write them (corpus pairs 03, 04, 05): a loss named by a string
(``'categorical_crossentropy'``, ``'sparse_categorical_crossentropy'``: per-example functions that
``compile`` averages over the batch), a ``Loss`` object, ``fit`` or parity's default step, and the
``model.add_loss(symbolic tensor)`` idiom. The ``loss`` stage is the scalar the update minimises
(docs/stages.md): it agrees with a torch port that averages, and a port that sums diverges at step 0,
stage ``loss``. Programs in examples/equivalence/keras_string_loss*.py and torch_string_loss*.py.

The verdicts are parity's own (``Comparison.ok`` / ``.first``): no tolerance is set here.
"""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.torch, pytest.mark.slow]

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "equivalence")


def _compare(ref: str, port: str, steps: int = 2, dtypes=("float64", "float32")):
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(HERE, ref), os.path.join(HERE, port), steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}


def _agree(ref: str, port: str):
    by = _compare(ref, port)
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {ref} vs {port}: {c.verdict} at {c.first}"
        assert not c.issues, c.issues  # no "loss: shape [8] vs []" structure issue
    return by


@pytest.mark.parametrize("ref", ["keras_string_loss.py", "keras_string_loss_fit.py", "keras_string_loss_object_fit.py"])
def test_categorical_crossentropy_string_object_fit_or_not_agree_with_torch_mean(ref):
    _agree(ref, "torch_logsoftmax_nll.py")


@pytest.mark.parametrize("ref", ["keras_string_loss_sparse.py", "keras_string_loss_sparse_fit.py"])
def test_sparse_categorical_crossentropy_string_agrees_with_torch_cross_entropy(ref):
    _agree(ref, "torch_string_loss_sparse.py")


@pytest.mark.parametrize("ref", ["keras_string_loss.py", "keras_string_loss_fit.py"])
def test_a_port_summing_the_batch_diverges_at_step0_loss(ref):
    by = _compare(ref, "torch_string_loss_sum.py")
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: should diverge, got {c.verdict}"
        assert (c.first.step, c.first.stage, c.first.name) == (0, "loss", "loss"), f"{dtype}: {c.first}"
        assert not c.issues, c.issues  # a value divergence (8x), not a shape


@pytest.mark.parametrize("ref", ["keras_string_loss_add_loss.py", "keras_string_loss_add_loss_step.py"])
def test_keras2_add_loss_model_compiled_without_a_loss_agrees(ref):
    # the symbolic add_loss term is read as the value of the step's own call (not a SymbolicTensor),
    # by fit and by parity's default step
    by = _agree(ref, "torch_string_loss_add_loss.py")
    for c in by.values():
        assert c.first is None
