"""Pitfall cases: loss reduction and Keras's probability clipping (softmax regression, 3 classes)."""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair

_XY = {"X": {"kind": "normal", "shape": (8, 5)}, "Y": {"kind": "onehot", "n": 8, "classes": 3}}
_COST = Cost(depth=2, reduction=8)

pitfall_pair(
    "loss-reduction", module="pitfalls.loss", title="reduce_mean(softmax_cross_entropy_with_logits), Adam",
    reference="tf1", params={"W": Init((5, 3), "random_normal", {"stddev": 0.5}), "b": Init((3,), "zeros")},
    arrays=_XY, steps=3, cost=_COST,
    # float32-exact Adam hyper-parameters (see pitfalls_optim.py).
    options={"lr": 0.0625, "beta1": 0.875, "beta2": 1 - 2**-8, "epsilon": 2**-27},
)
# Weights of std 8 saturate the softmax: some true-class probabilities fall below 1e-7,
# where Keras's clip bites (PITFALLS P28: 26.8 per example with logits x 20).
pitfall_pair(
    "keras-prob-clipping", module="pitfalls.loss", title="Keras CategoricalCrossentropy on eager softmax output",
    reference="tf2", params={"W": Init((5, 3), "random_normal", {"stddev": 8.0}), "b": Init((3,), "zeros")},
    arrays=_XY, steps=2, cost=_COST, options={"lr": 0.0625},
)
# softmax then nll_loss (log_softmax meant): the loss is -mean(p_y) (corpus: a port's loss on probabilities).
pitfall_pair(
    "loss-on-probabilities", module="pitfalls.loss", title="softmax_cross_entropy_with_logits ported as nll_loss(softmax(logits))",
    reference="tf1", params={"W": Init((5, 3), "random_normal", {"stddev": 0.5}), "b": Init((3,), "zeros")},
    arrays=_XY, steps=2, cost=_COST, options={"lr": 0.0625, "beta1": 0.875, "beta2": 1 - 2**-8, "epsilon": 2**-27},
)
