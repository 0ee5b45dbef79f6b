"""Pitfall cases: BatchNorm conventions and the train/inference mode (x -> BN -> Dense, SGD)."""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair

_P = {
    "gamma": Init((4,), "ones"),
    "beta": Init((4,), "zeros"),
    "K": Init((4, 1), "random_normal", {"stddev": 0.5}),
    "moving_mean": Init((4,), "zeros", trainable=False),
    "moving_variance": Init((4,), "ones", trainable=False),
}
# BN input N(2, 3^2) as in PITFALLS P01; n = 8 rows per channel.
_X = {"X": {"kind": "normal", "shape": (8, 4), "mean": 2.0, "std": 3.0}, "T": {"kind": "normal", "shape": (8, 1)}}
# Low-variance features (std 0.05): epsilon 1e-3 vs 1e-5 changes the output by O(1)
# (PITFALLS P02: the effect is about (eps_a - eps_b) / (2 var)).
_X_LOW = dict(_X, X={"kind": "normal", "shape": (8, 4), "mean": 2.0, "std": 0.05})
# float32 model: moments over 8 rows, a 4-wide dense layer (depth 2).
_COST = Cost(depth=2, reduction=8)
_OPTS = {"momentum": 0.99, "epsilon": 1e-3, "lr": 0.125, "variance": "unbiased"}


def _bn(pitfall, title, arrays=_X, wrong="torch:wrong", **options):
    return pitfall_pair(
        pitfall, module="pitfalls.bn", title=title, reference="tf1", params=_P, arrays=arrays, steps=3,
        options=dict(_OPTS, **options), wrong=wrong, cost=_COST,
    )


_bn("bn-momentum", "BN momentum 0.99 (TF) vs 0.01 (torch convention)")
_bn("bn-epsilon", "BN epsilon 1e-3 on low-variance features", arrays=_X_LOW)
_bn("bn-running-var", "biased moving variance (Keras 3 / non-fused tf.layers)", variance="biased")
_bn("bn-update-ops", "TF1 BN moving statistics updated through UPDATE_OPS", wrong="tf1:wrong")
_bn("learning-phase", "TF1/Keras learning phase fed True (training mode)", wrong="tf1:wrong")
_bn("torch-eval-mode", "torch model in train() mode during training")
