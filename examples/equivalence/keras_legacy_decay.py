"""A Keras (tf_keras) MLP (4-8-3) trained with the legacy ``SGD(decay=DECAY)``: the rate of
step t is ``LR / (1 + DECAY * t)``, the optimizer's own per-step decay (no momentum: Keras' velocity
holds lr-scaled gradients, torch's buffer raw ones, which differ once the rate changes). Its torch equivalent is a
``LambdaLR`` stepped after every step (torch_lambdalr.py)."""

import numpy as np
import tf_keras as keras

LR, DECAY = 0.01, 0.5  # 0.01 is not a float32 number: a float64 run must step with 0.01, not 0.0099999998


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, name="out"),
    ])
    optimizer = keras.optimizers.legacy.SGD(learning_rate=LR, decay=DECAY)
    return {"model": model, "optimizer": optimizer, "loss": keras.losses.CategoricalCrossentropy(from_logits=True),
            "data": batches}
