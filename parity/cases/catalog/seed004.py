"""Seed 004: what minimize() trains, with the seed's exact numbers.

* (y - w x)^2, x=1, y=3, w=2, lr=1: w goes 2 -> 4 -> 2 -> 4 (dL/dw = 2w - 6 at x=1).
* y = w1 x + w2 x + w3 x, x=1, y=1, w3 = tf.constant(4), w1 = w2 = 4: w1 + w2 -> -3.
  lr 0.25 lands there in one step (each w moves by 0.5 r, r = 1 - (w1+w2+4)), exactly,
  so the test checks -3 exactly rather than a convergence tolerance.
* var_list=[w2] (or w1 trainable=False), w1 = w2 = 4: w2 -> -7 while w1 stays 4
  (lr 0.5 lands there in one step).
* all constants: nothing to train; each framework refuses in its own words, and the case
  states which words (any other error -- a NameError in a port, TensorFlow missing -- is
  not the refusal: it is a crash, or "not run").
* global_step (trainable=False, counted) and ExponentialMovingAverage shadows.
"""

from __future__ import annotations

from parity.cases.case import Case, Cost, Data, Init, Refusal, register

_TAGS = ("seed", "seed004")


def _scalar(value: float, trainable: bool = True) -> Init:
    return Init((), "constant", {"value": value}, trainable=trainable)


OSCILLATE = register(
    Case(
        name="seed004_oscillate",
        module="minimize",
        title="(y - w x)^2, x=1 y=3 w=2 lr=1: w 2 -> 4 -> 2 -> 4",
        source="004",
        ports=("tf1", "tf1:minimize", "tf2", "torch", "numpy"),
        params={"w": _scalar(2.0)},
        data=Data("constant", {"x": 1.0, "y": 3.0}),
        steps=4,
        options={"kind": "oscillate", "lr": 1.0},
        tags=_TAGS,
    )
)

CONSTANT = register(
    Case(
        name="seed004_constant",
        module="minimize",
        title="y = (w1 + w2 + w3) x, w3 a constant: w1 + w2 -> -3",
        source="004",
        ports=("tf1", "tf1:minimize", "tf2", "torch", "numpy"),
        params={"w1": _scalar(4.0), "w2": _scalar(4.0)},
        data=Data("constant", {"x": 1.0, "y": 1.0}),
        steps=3,
        options={"kind": "sum", "w3": 4.0, "lr": 0.25},
        cost=Cost(depth=1, reduction=3),
        tags=_TAGS,
    )
)

VAR_LIST = register(
    Case(
        name="seed004_var_list",
        module="minimize",
        title="var_list=[w2] / trainable=False / requires_grad / optimizer groups / buffer: w2 -> -7, w1 stays 4",
        source="004",
        ports=("tf1", "tf1:trainable_false", "tf1:minimize", "tf2", "tf2:trainable_false",
               "torch", "torch:optimizer", "torch:buffer", "numpy"),
        params={"w1": _scalar(4.0, trainable=False), "w2": _scalar(4.0)},
        data=Data("constant", {"x": 1.0, "y": 1.0}),
        steps=3,
        options={"kind": "sum", "w3": 4.0, "lr": 0.5},
        cost=Cost(depth=1, reduction=3),
        tags=_TAGS,
    )
)

NOTHING = register(
    Case(
        name="seed004_nothing_to_train",
        module="minimize",
        title="only constants: each framework refuses to train",
        source="004",
        ports=("tf1", "tf2", "torch"),
        params={},
        data=Data("constant", {"x": 1.0, "y": 1.0}),
        steps=1,
        options={"kind": "constants", "constants": (4.0, 4.0, 4.0), "lr": 0.1},
        expect="error",
        refusals={
            # tf.compat.v1 Optimizer.minimize / compute_gradients, when building the train op.
            "tf1": Refusal("ValueError", r"^No variables to optimize"),
            # Keras 3 apply_gradients([]) at step 0 (measured, TF 2.21; see tf_impl/v2/minimize.py).
            "tf2": Refusal("ValueError", r"not enough values to unpack \(expected 2, got 0\)"),
            # torch.optim.Optimizer.__init__ with no parameters.
            "torch": Refusal("ValueError", r"optimizer got an empty parameter list"),
            # the numpy oracle's own words (parity/oracle/minimize.py).
            "numpy": Refusal("ValueError", r"nothing to train"),
        },
        tags=_TAGS,
    )
)

EMA = register(
    Case(
        name="seed004_global_step_ema",
        module="minimize",
        title="global_step (trainable=False) counted; ExponentialMovingAverage(0.9, num_updates) shadows",
        source="004",
        ports=("tf1", "tf2", "torch", "numpy"),
        params={"w": _scalar(2.0)},
        data=Data("constant", {"x": 1.0, "y": 3.0}),
        steps=12,
        options={"kind": "oscillate", "lr": 0.1, "global_step": True, "ema_decay": 0.9},
        tags=_TAGS,
    )
)
