"""Seed 001's convnet, ported to PyTorch wrong in four classic ways (see ``torch_impl/convnet.py``)."""

from __future__ import annotations

import functools

import numpy as np

from parity.portkit.layout import dense_from_torch, dense_to_torch
from torch_impl._common import torch
from torch_impl.convnet import ConvnetPort, _dropout, _module_class

__all__ = ["MISTAKES", "NoFlattenPermutation", "SymmetricPadding", "KeepProbAsP", "TorchEpsilon", "native_dropout_keep_prob_as_p"]


class NoFlattenPermutation(ConvnetPort):
    """``flatten-order`` (P23): fc1's kernel only transposed, its rows left in TF's (h, w, c) order."""

    def _fc1_layout(self):
        return dense_to_torch, dense_from_torch  # the slip: no flatten_rows_to_torch


@functools.lru_cache(maxsize=None)
def _symmetric_model():
    F = torch().nn.functional
    ConvNet = _module_class()

    class SymmetricConvNet(ConvNet):
        def _conv(self, conv, x):
            if conv is not self.conv1:
                return super()._conv(conv, x)
            k = conv.kernel_size[0]
            # the slip (same-padding-conv, P24): SAME as padding=k//2 on both sides, which
            # differs from TF's SAME when the stride is 2 and the size even
            return F.relu(F.conv2d(x, conv.weight, conv.bias, conv.stride, padding=k // 2))

    return SymmetricConvNet


class SymmetricPadding(ConvnetPort):
    """``same-padding-conv`` (P24): conv1's SAME padding written as ``padding=k//2``."""

    def _model_class(self):
        return _symmetric_model()

    def settings(self):
        return {**super().settings(), "padding": "padding=k//2"}


class KeepProbAsP(ConvnetPort):
    """``dropout-keep-prob`` (P06): TF1's ``keep_prob`` passed as torch's ``p`` (the drop probability)."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.model.dropout.p = self.keep_prob  # the slip: nn.Dropout(p=keep_prob)


class TorchEpsilon(ConvnetPort):
    """``adam-epsilon`` (P09): torch's own epsilon placement, eps on sqrt of the bias-corrected v."""

    def _epsilon_hat(self):
        pass  # the slip: eps left as TF1's epsilon, added where torch adds it

    def settings(self):
        return {**super().settings(), "adam_epsilon_placement": "torch: sqrt(v_hat) + eps"}


def native_dropout_keep_prob_as_p(x: np.ndarray, keep_prob: float, *, seed: int = 0) -> np.ndarray:
    """Apply ``nn.Dropout(p=keep_prob)`` (training mode) to ``x``: the slip, on its own."""
    return _dropout(x, keep_prob, seed)


MISTAKES = {
    "no_flatten_perm": NoFlattenPermutation,
    "symmetric_pad": SymmetricPadding,
    "keep_prob_as_p": KeepProbAsP,
    "torch_eps": TorchEpsilon,
}
