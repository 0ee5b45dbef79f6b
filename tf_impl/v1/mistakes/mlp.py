"""Seed 002's MLP in TF1 with the seed's own loss call (see ``tf_impl/v1/mlp.py``)."""

from __future__ import annotations

from tf_impl.v1.mlp import MlpPort

__all__ = ["MISTAKES", "LossesFloat32Cast"]


class LossesFloat32Cast(MlpPort):
    """``tf.losses.softmax_cross_entropy``: it casts the per-example losses to float32 before reducing.

    Harmless in float32; in a float64 graph the loss and every gradient carry float32
    rounding (case ``seed002_tf1_losses_float32_cast``).
    """

    def _loss(self, tf, y, logits):
        return self.tf1.losses.softmax_cross_entropy(onehot_labels=y, logits=logits)  # the float32 cast


MISTAKES = {"losses": LossesFloat32Cast}
