"""Pitfall cases: weight decay in its forms, and optimizer state when a parameter gets no gradient.

* ``l2-loss-half`` / ``decay-on-bias``: TF1 ``loss + wd * (l2_loss(W1) + l2_loss(W2))`` (kernels
  only; l2_loss = sum/2) under SGD, against a torch L2 term written as ``wd * sum(W**2)`` or
  over every parameter.
* ``adamw-decoupled``: Keras ``AdamW(weight_decay)`` against torch ``Adam(weight_decay)``.
* ``none-grad-skip``: a second head used at steps 0 and 2 only, Adam; TF feeds dense zeros at
  step 1, torch leaves ``.grad`` None and skips the parameter.
"""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair


def _n(*shape, std=0.5):
    return Init(shape, "random_normal", {"stddev": std})


_MLP = {"W1": _n(5, 4), "b1": _n(4, std=0.25), "W2": _n(4, 1), "b2": _n(1, std=0.25)}
_XT = {"X": {"kind": "normal", "shape": (16, 5)}, "T": {"kind": "normal", "shape": (16, 1)}}
# float32 model: two dense layers (depth 2), reductions over 5 inputs and a 16-row batch mean.
_COST = Cost(depth=2, reduction=16)
# float32-exact hyper-parameters (powers of two; beta2 = 1 - 2**-8: see pitfalls_optim.py).
_ADAM = {"lr": 0.0625, "beta1": 0.875, "beta2": 1 - 2**-8, "epsilon": 2**-27}

for _name, _title in (
    ("l2-loss-half", "TF1 loss + wd * tf.nn.l2_loss(W) (sum/2) on the kernels, SGD"),
    ("decay-on-bias", "TF1 L2 on the kernels only (biases not decayed), SGD"),
):
    # wd = 2**-2: the decay term moves the gradient by wd * W ~ 0.1, far above rounding
    pitfall_pair(_name, module="pitfalls.decay", title=_title, reference="tf1", params=_MLP, arrays=_XT, steps=2,
                 cost=_COST, options={"scenario": "l2", "lr": 0.125, "weight_decay": 0.25})
pitfall_pair("adamw-decoupled", module="pitfalls.decay", title="Keras AdamW(weight_decay=2**-3), decoupled",
             reference="tf2", params=_MLP, arrays=_XT, steps=2, cost=_COST,
             options=dict(_ADAM, scenario="adamw", weight_decay=0.125))
pitfall_pair("none-grad-skip", module="pitfalls.decay", title="TF1 Adam, a head without gradient at step 1 (dense zeros)",
             reference="tf1", params={"W1": _n(5, 4), "W2": _n(4, 1), "W3": _n(4, 1)},
             arrays=dict(_XT, use={"kind": "per_step", "values": (1.0, 0.0, 1.0)}), steps=3, cost=_COST,
             options=dict(_ADAM, scenario="nograd"))
