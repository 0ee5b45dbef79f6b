"""Seed 002's MLP in PyTorch with torch's built-ins where TF's formulas differ (see ``torch_impl/mlp.py``)."""

from __future__ import annotations

from torch_impl.mlp import MlpPort

__all__ = ["MISTAKES", "Renorm", "RenormDim0", "ClipGradNorm"]


class Renorm(MlpPort):
    """``max-norm-axis`` (P20), the epsilon: ``torch.renorm`` divides by ``norm + 1e-7``, TF by ``norm``."""

    def _max_norm(self, weight, radius, tf_axes):
        # dim is the dimension renorm keeps: TF axes=1 of [in, out] reduces "out" and keeps
        # "in", which is dim 1 of the torch weight [out, in]. Right axis, but + RENORM_EPS.
        return self.t.renorm(weight, 2, tf_axes, radius)


class RenormDim0(MlpPort):
    """``max-norm-axis`` (P20): the norm taken over the wrong axis (each output unit, Keras ``MaxNorm``'s)."""

    def _max_norm(self, weight, radius, tf_axes):
        return self.t.renorm(weight, 2, 0, radius)  # the slip: dim=0 of [out, in]


class ClipGradNorm(MlpPort):
    """P18: ``clip_grad_norm_`` divides by ``total_norm + 1e-6``; ``tf.clip_by_global_norm`` by the norm."""

    def _clip_by_global_norm(self, params, clip):
        return self.t.nn.utils.clip_grad_norm_(params, clip)  # torch's built-in, + CLIP_GRAD_NORM_EPS


MISTAKES = {"renorm": Renorm, "renorm_dim0": RenormDim0, "clip_grad_norm": ClipGradNorm}
