"""The equivalence suite (issue 20 items 1, 4, 8; docs/stages.md): pairs of plain programs
(examples/equivalence/) that compute the same training agree in float64 and float32 whatever the
spelling (L2 in the loss vs a coupled ``weight_decay``, ``kernel_regularizer`` vs parameter groups,
one group vs several, AdamW in torch and Keras, softmax + cross-entropy vs log_softmax + NLL, a
per-epoch StepLR vs a staircase decay); pairs that differ diverge at the right step and stage.

The verdicts are parity's own (``Comparison.ok`` / ``.first``): no tolerance is set here. Each pair is
a 4-8-3 MLP, batch 8, 3-4 steps. The torch-only pairs run by default; the pairs that build a
TensorFlow graph or Keras model are marked slow (each takes 15-40 s on a busy 2-core machine).
"""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.torch]

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "equivalence")


def _compare(ref: str, port: str, steps: int, dtypes=("float64", "float32")):
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(HERE, ref), os.path.join(HERE, port), steps=steps, dtypes=dtypes)
    return {c.dtype: c for c in result.comparisons}, result


def _agree(ref: str, port: str, steps: int = 3, skipped=()):
    by, result = _compare(ref, port, steps)
    assert set(by) == {"float64", "float32"}
    for dtype, c in by.items():
        assert c.ok, f"{dtype}: {ref} vs {port}: {c.verdict} at {c.first}"
        # a stage only one side can report is listed, never silently dropped
        assert sorted(s for s, _ in c.skipped) == sorted(skipped), c.skipped
    return by, result


def _diverge(ref: str, port: str, step: int, stages, steps: int = 3, dtypes=("float64", "float32")):
    by, _ = _compare(ref, port, steps, dtypes)
    for dtype, c in by.items():
        assert not c.ok and c.first is not None, f"{dtype}: {ref} vs {port} should diverge, got {c.verdict}"
        assert (c.first.step, c.first.stage) in [(step, s) for s in stages], f"{dtype}: first divergence {c.first}"
    return by


# -- torch against torch (fast) ------------------------------------------------------------------

def test_adamw_vs_adam_weight_decay_diverges_at_regularization_step0():
    # AdamW's decay is decoupled (regularization 0), Adam(weight_decay)'s is the gradient of wd/2*||w||^2
    by = _diverge("torch_adamw.py", "torch_adam_wd.py", 0, ["regularization"])
    assert all(c.first.name == "regularization" for c in by.values())


def test_one_group_vs_param_groups_agree_without_structure():
    by, _ = _agree("torch_adam_wd.py", "torch_groups_same.py")
    for c in by.values():
        assert not c.issues  # no "lr: missing in B", "lr/0", "lr/1"


# -- TF1 / Keras against torch (slow: a TensorFlow graph or Keras model per dtype) -----------------

@pytest.mark.tf
@pytest.mark.slow
def test_tf1_l2_in_loss_vs_coupled_weight_decay_agree():
    _agree("tf1_l2_momentum.py", "torch_sgd_wd.py")


@pytest.mark.tf
@pytest.mark.slow
def test_tf1_l2_in_loss_vs_hand_written_l2_agree_comparing_the_total():
    # the torch loss function reads the parameters itself: its regularisation cannot be told apart,
    # so that stage is listed as reported by one side and the total loss and gradients are compared
    _, result = _agree("tf1_l2_momentum.py", "torch_l2_in_loss.py", skipped=["regularization"])
    assert any(n.startswith("port: regularization: the loss function reads the parameters itself") for n in result.notes)


@pytest.mark.tf
@pytest.mark.slow
def test_decay_on_all_parameters_vs_kernels_only_diverges():
    # the biases start at 0, so their L2 term is 0 at step 0: the first difference is step 1's
    # regularisation (float64), or in float32 the gradients it changes, the same step
    _diverge("tf1_l2_momentum.py", "torch_groups_kernel_wd.py", 1, ["regularization", "gradients"])


@pytest.mark.tf
@pytest.mark.slow
def test_keras_kernel_regularizer_vs_torch_param_groups_agree():
    _agree("keras_l2.py", "torch_groups_kernel_wd.py")


@pytest.mark.tf
@pytest.mark.slow
def test_keras_adamw_vs_torch_adamw_agree():
    _agree("keras_adamw.py", "torch_adamw.py")


@pytest.mark.tf
@pytest.mark.slow
def test_softmax_cce_vs_log_softmax_nll_agree():
    _agree("keras_softmax_cce.py", "torch_logsoftmax_nll.py")


@pytest.mark.tf
@pytest.mark.slow
def test_steplr_per_epoch_vs_staircase_decay_agree():
    _, result = _agree("tf1_exp_decay.py", "torch_steplr.py", steps=4)
    assert "port: scheduler StepLR: stepped per epoch, every 2 training steps (the epoch's length: its data's length)" \
        in result.notes, result.notes


@pytest.mark.tf
@pytest.mark.slow
def test_per_epoch_schedule_vs_none_diverges_at_the_rate_of_step2():
    by = _diverge("tf1_exp_decay.py", "torch_sgd_nodecay.py", 2, ["learning_rate"], steps=4, dtypes=("float64",))
    assert by["float64"].first.name == "lr"  # the one rate every parameter shares, named first


@pytest.mark.tf
@pytest.mark.slow
def test_keras_legacy_decay_vs_lambdalr_per_step_agree():
    # the rate reported is the one the legacy optimizer applies, lr / (1 + decay * iterations)
    _, result = _agree("keras_legacy_decay.py", "torch_lambdalr.py", steps=4)
    assert any(n.startswith("port: scheduler LambdaLR: stepped after every training step") for n in result.notes)
    assert any(n.startswith("reference: scheduler (Keras legacy decay=0.5)") for n in result.notes)


# -- the parts, without a run ------------------------------------------------------------------------

def test_scheduler_unit_by_class_and_by_the_programs_word():
    import torch

    from torch_impl.capture.optimizer import scheduler_unit

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler
    assert scheduler_unit(sched.StepLR(opt, 1), None) == "epoch"
    assert scheduler_unit(sched.MultiStepLR(opt, [1]), None) == "epoch"
    assert scheduler_unit(sched.ExponentialLR(opt, 0.9), None) == "epoch"
    assert scheduler_unit(sched.LambdaLR(opt, lambda s: 1.0), None) == "step"  # either unit: as written today
    assert scheduler_unit(sched.OneCycleLR(opt, 0.1, total_steps=10), None) == "step"
    assert scheduler_unit(sched.StepLR(opt, 1), "step") == "step"
    assert scheduler_unit(sched.LambdaLR(opt, lambda s: 1.0), "epoch") == "epoch"


def test_a_loss_function_reading_the_parameters_is_found():
    import torch

    from torch_impl.capture.optimizer import loss_reads_parameters

    lin = torch.nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    out = lin(x)
    plain = torch.nn.functional.cross_entropy(out, y)
    assert not loss_reads_parameters(plain, [out], list(lin.parameters()))
    out = lin(x)
    by_hand = torch.nn.functional.cross_entropy(out, y) + 0.01 * lin.weight.pow(2).sum()
    assert loss_reads_parameters(by_hand, [out], list(lin.parameters()))


def test_coupled_and_decoupled_decay_per_parameter():
    import torch

    from torch_impl.capture.optimizer import decay_of

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    sgd = torch.optim.SGD([{"params": [a], "weight_decay": 0.1}, {"params": [b]}], lr=0.1)
    assert decay_of(sgd) == {id(a): (0.1, 0.0), id(b): (0.0, 0.0)}
    adamw = torch.optim.AdamW([a], lr=0.1, weight_decay=0.02)
    assert decay_of(adamw) == {id(a): (0.0, 0.02)}


@pytest.mark.tf
def test_tf1_regularisation_terms_of_the_loss():
    import tensorflow.compat.v1 as tf

    from tf_impl.v1.capture.optimizer import regularization_terms

    g = tf.Graph()
    with g.as_default():
        x = tf.placeholder(tf.float64, [None, 2])
        w = tf.get_variable("w", [2, 1], tf.float64)
        data = tf.reduce_mean(tf.matmul(x, w))
        term = 0.01 * tf.nn.l2_loss(w)
        assert regularization_terms(data + term, [x]) == [term.name]
        assert regularization_terms(tf.add_n([data, term]), [x]) == [term.name]
        assert regularization_terms(data, [x]) == []  # no regularisation
        # inside the mean: not told apart (compared as the total)
        assert regularization_terms(tf.reduce_mean(tf.matmul(x, w) + term), [x]) == []
