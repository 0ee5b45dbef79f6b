"""Seed 003's BatchNorm convnet in PyTorch, wrong in three ways (see ``torch_impl/bn_convnet.py``)."""

from __future__ import annotations

from torch_impl.bn_convnet import BnConvnetPort

__all__ = ["MISTAKES", "EvalMode", "UnbiasedRunningVar", "TF32Conv"]


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


class TF32Conv(BnConvnetPort):
    """``tf32-emulated`` (P45) behind a BatchNorm: the conv's float32 operands rounded to TF32's 10-bit mantissa, what
    cuDNN does on an Ampere+ GPU with ``torch.backends.cudnn.allow_tf32 = True`` (torch's default there), emulated here
    on any device (the gradient passes straight through); float64 is untouched. The conv output stays within
    float32's bound; its kernel's gradient, through the BatchNorm's backward, does not."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        if dtype == "float32":
            from torch_impl.pitfalls.layers import round_tf32

            conv, F = self.model.conv, self.t.nn.functional
            conv.forward = lambda x: F.conv2d(round_tf32(x), round_tf32(conv.weight), conv.bias, conv.stride, conv.padding)


MISTAKES = {"eval": EvalMode, "unbiased": UnbiasedRunningVar, "tf32_conv": TF32Conv}
