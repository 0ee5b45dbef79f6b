"""Seed 003's learning-phase bug in TF2 (see ``tf_impl/v2/bn_convnet.py``)."""

from __future__ import annotations

from tf_impl.v2.bn_convnet import BnConvnetPort

__all__ = ["MISTAKES", "NoTrainingFlag"]


class NoTrainingFlag(BnConvnetPort):
    """``learning-phase`` (P04): ``model(x)`` without ``training=True``.

    ``training`` stays None and Keras 3 runs the layers in inference mode: BatchNorm on
    its moving statistics, dropout the identity, while the optimizer still trains.
    """

    def _train(self, inputs, y):
        acts, loss, grads = self._forward(inputs, y, None)  # the bug: training not passed
        self.opt.apply_gradients(zip(grads, self.trainable))
        return acts, loss, grads

    def settings(self):
        return {**super().settings(), "mode": "model(x): inference"}


MISTAKES = {"no_training": NoTrainingFlag}
