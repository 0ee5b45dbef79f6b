"""Pitfall case: one BatchNorm called twice in one TF1 step with its moving-average updates in the call (a GAN's
D(real) and D(fake, reuse=True) under ``tf.contrib.layers.batch_norm(updates_collections=None)``): x -> BN -> Dense
on two batches, SGD. TF updates the moving statistics from the value the step read, once per call; a torch port
that calls the module twice chains the updates."""

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
# two batches of different statistics (a GAN's real and generated images), n = 8 rows per channel
_X = {"X": {"kind": "normal", "shape": (8, 4), "mean": 2.0, "std": 3.0},
      "X2": {"kind": "normal", "shape": (8, 4), "mean": -1.0, "std": 1.5},
      "T": {"kind": "normal", "shape": (8, 1)}, "T2": {"kind": "normal", "shape": (8, 1)}}

pitfall_pair(
    "bn-shared-updates", module="pitfalls.bn_shared",
    title="BatchNorm called twice in one TF1 step, its updates in the call (GAN D(real), D(fake))",
    reference="tf1", params=_P, arrays=_X, steps=3,
    options={"momentum": 0.9, "epsilon": 1e-3, "lr": 0.125}, wrong="torch:wrong",
    cost=Cost(depth=2, reduction=8),  # float32: moments over 8 rows, a 4-wide dense layer, as pitfalls_bn
)
