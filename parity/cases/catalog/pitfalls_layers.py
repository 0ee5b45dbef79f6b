"""Pitfall cases: layouts, padding, pooling, activations, normalisation, dropout, TF32."""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair


def _n(*shape, std=1.0):
    return Init(shape, "random_normal", {"stddev": std})


def _layers(pitfall, title, params, arrays, cost, wrong_dtypes=None, **options):
    return pitfall_pair(
        pitfall, module="pitfalls.layers", title=title, reference="tf1", params=params, arrays=arrays,
        steps=2, options=dict({"lr": 0.125}, **options), cost=cost, wrong_dtypes=wrong_dtypes,
    )


def _x(*shape, std=1.0, mean=0.0):
    return {"X": {"kind": "normal", "shape": shape, "std": std, "mean": mean}}


_MLP4 = {"K1": _n(4, 4, std=0.5), "b1": _n(4, std=0.1), "K2": _n(4, 1, std=0.5)}
# A square kernel: the transpose is shape-silent (PITFALLS P21).
_layers("dense-transpose", "Dense kernel [in, out] -> Linear weight [out, in] (square 4x4)", _MLP4, _x(4, 4),
        Cost(depth=2, reduction=4), scenario="dense-transpose")
# TF32 keeps 10 mantissa bits: a relative error ~2**-11 per operand, far above float32
# rounding. It touches float32 only (the wrong port rounds its float32 operands, as an
# Ampere+ GPU does): the wrong case runs in float32; its right case in both dtypes.
_layers("tf32-emulated", "MLP 16-16-1 in IEEE float32 (TF32 emulated in the wrong port)",
        {"K1": _n(16, 16, std=0.25), "b1": _n(16, std=0.1), "K2": _n(16, 1, std=0.25)}, _x(8, 16),
        Cost(depth=2, reduction=16), scenario="tf32-emulated", wrong_dtypes=("float32",))
# Pre-activations of size ~2, where exact and tanh GELU differ most (PITFALLS P41).
_layers("gelu-approx", "tf.nn.gelu (exact erf form)", {"K1": _n(3, 5), "b1": _n(5, std=0.5), "K2": _n(5, 1, std=0.5)},
        _x(4, 3, std=1.5), Cost(depth=3, reduction=5), scenario="gelu-approx")
# Features with std 0.05 per row: epsilon 1e-3 vs 1e-5 is O(1) (PITFALLS P40).
_layers("layernorm-epsilon", "Keras LayerNormalization(epsilon=1e-3) on low-variance rows",
        {"gamma": Init((6,), "ones"), "beta": Init((6,), "zeros"), "K": _n(6, 1, std=0.5)}, _x(4, 6, std=0.05, mean=1.0),
        Cost(depth=3, reduction=6), scenario="layernorm-epsilon", epsilon=1e-3)
# A non-square image (5x6) and a 3x3 kernel whose H/W swap keeps every shape.
_layers("conv-layout", "conv2d HWIO/NHWC -> Conv2d OIHW/NCHW", {"K": _n(3, 3, 2, 3, std=0.5), "b": _n(3, std=0.1), "K2": _n(3, 1, std=0.5)},
        _x(2, 5, 6, 2), Cost(depth=2, reduction=18), scenario="conv-layout")
_layers("flatten-order", "NHWC flatten (h, w, c) before a Dense layer",
        {"K": _n(3, 3, 2, 3, std=0.5), "b": _n(3, std=0.1), "Kd": _n(12, 2, std=0.3)}, _x(2, 4, 4, 2),
        Cost(depth=2, reduction=18), scenario="flatten-order")
# Even input (6), stride 2, k 3: TF pads (0, 1), torch padding=1 pads (1, 1) (PITFALLS P24).
_layers("same-padding-conv", "conv2d k3 s2 SAME on a 6x6 input", {"K": _n(3, 3, 2, 3, std=0.5), "b": _n(3, std=0.1), "K2": _n(3, 1, std=0.5)},
        _x(2, 6, 6, 2), Cost(depth=2, reduction=18), scenario="same-padding-conv", stride=2, padding="SAME")
_layers("same-padding-pool", "max_pool 3x3 s2 SAME on a 6x6 map", {"K": _n(1, 1, 2, 2), "K2": _n(2, 1, std=0.5)},
        _x(2, 6, 6, 2), Cost(depth=3, reduction=9), scenario="same-padding-pool", pool="max", pool_size=3, pool_stride=2)
_layers("avgpool-count-pad", "avg_pool 3x3 s1 SAME (padding not counted)", {"K": _n(1, 1, 2, 2), "K2": _n(2, 1, std=0.5)},
        _x(2, 6, 6, 2), Cost(depth=3, reduction=9), scenario="avgpool-count-pad", pool="avg", pool_size=3, pool_stride=1)
_layers("dropout-keep-prob", "tf.nn.dropout(keep_prob=0.75) with the harness's mask",
        {"K1": _n(6, 6, std=0.5), "b1": _n(6, std=0.1), "K2": _n(6, 1, std=0.5)},
        dict(_x(8, 6), U={"kind": "uniform", "shape": (8, 6)}), Cost(depth=2, reduction=6),
        scenario="dropout-keep-prob", keep_prob=0.75)
# The same layer with the torch model left in eval() and no BatchNorm to show it: dropout is
# the identity in the wrong port (PITFALLS P04).
_layers("dropout-eval-mode", "tf.nn.dropout(keep_prob=0.75) in training, torch model in train()",
        {"K1": _n(6, 6, std=0.5), "b1": _n(6, std=0.1), "K2": _n(6, 1, std=0.5)},
        dict(_x(8, 6), U={"kind": "uniform", "shape": (8, 6)}), Cost(depth=2, reduction=6),
        scenario="dropout-eval-mode", keep_prob=0.75)
# Pre-activations of both signs; alpha 0.25, exact in float32: TF's leaky_relu takes alpha as a
# float32 attribute (its default 0.2 is 0.200000003 in a float64 graph, 1.5e-8 off torch's 0.2).
_layers("leaky-relu-slope", "tf.nn.leaky_relu(alpha=0.25) ported as F.leaky_relu (slope 0.01 by default)",
        {"K1": _n(5, 6), "b1": _n(6, std=0.1), "K2": _n(6, 1, std=0.5)}, _x(8, 5), Cost(depth=2, reduction=6),
        scenario="leaky-relu-slope", alpha=0.25)
# Keras padding='same' at stride 1 ported as Conv2d's default padding=0: the output is 3x4, not 5x6 (corpus 04).
_layers("conv-padding", "conv2d k3 s1 SAME on a 5x6 input (Keras padding='same')",
        {"K": _n(3, 3, 2, 3, std=0.5), "b": _n(3, std=0.1), "K2": _n(3, 1, std=0.5)},
        _x(2, 5, 6, 2), Cost(depth=2, reduction=18), scenario="conv-padding", stride=1, padding="SAME")
# SpatialDropout2D / Dropout2d: one keep draw per image and channel (U: [N, C]); the wrong port's nn.Dropout
# draws per element (V: [N, H, W, C]).
_layers("dropout-kind", "channel dropout (noise_shape [N, 1, 1, C], keep 0.75) after a 3x3 conv",
        {"K": _n(3, 3, 2, 4, std=0.5), "b": _n(4, std=0.1), "K2": _n(4, 1, std=0.5)},
        dict(_x(4, 5, 5, 2), U={"kind": "uniform", "shape": (4, 4)}, V={"kind": "uniform", "shape": (4, 3, 3, 4)}),
        Cost(depth=2, reduction=18), scenario="dropout-kind", keep_prob=0.75)
# An input dropout (U0) and a hidden one (U): the wrong port leaves the input dropout out (corpus 04's port).
_layers("dropout-site-missing", "tf.nn.dropout on the input and on the hidden layer (keep 0.75)",
        {"K1": _n(6, 6, std=0.5), "b1": _n(6, std=0.1), "K2": _n(6, 1, std=0.5)},
        dict(_x(8, 6), U0={"kind": "uniform", "shape": (8, 6)}, U={"kind": "uniform", "shape": (8, 6)}),
        Cost(depth=2, reduction=6), scenario="dropout-site-missing", keep_prob=0.75)
