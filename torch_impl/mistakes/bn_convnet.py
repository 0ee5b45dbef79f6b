"""Seed 003's BatchNorm convnet in PyTorch, wrong in two ways (see ``torch_impl/bn_convnet.py``)."""

from __future__ import annotations

from torch_impl.bn_convnet import BnConvnetPort

__all__ = ["MISTAKES", "EvalMode", "UnbiasedRunningVar"]


class EvalMode(BnConvnetPort):
    """``torch-eval-mode`` (P04): the model never switched to ``train()``.

    BatchNorm normalises with its running statistics and dropout is the identity: the
    torch form of seed 003's learning-phase bug.
    """

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.model.eval()  # the bug: left in eval mode

    def settings(self):
        return {**super().settings(), "mode": "eval"}


class UnbiasedRunningVar(BnConvnetPort):
    """``bn-running-var`` (P03): stock ``nn.BatchNorm2d`` updates its running variance with the unbiased one."""

    def _batch_norm(self, keras_batch_norm):
        return self.t.nn.BatchNorm2d  # the slip: torch's own running-variance convention

    def settings(self):
        return {**super().settings(), "bn_running_var": "unbiased"}


MISTAKES = {"eval": EvalMode, "unbiased": UnbiasedRunningVar}
