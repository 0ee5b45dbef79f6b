"""A Keras (tf_keras) MLP (4-8-3) trained with ``AdamW(weight_decay=WD)`` (decoupled decay on every
variable): the same update as torch ``AdamW(weight_decay=WD)`` (torch_adamw.py) up to Adam's epsilon
convention (Keras adds it to sqrt(v), torch to sqrt(v_hat)), made negligible by a tiny epsilon."""

import numpy as np
import tf_keras as keras

WD, LR, EPS = 0.01, 0.01, 1e-16


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="tanh", name="hidden"),
        keras.layers.Dense(3, name="out"),
    ])
    optimizer = keras.optimizers.AdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    return {"model": model, "optimizer": optimizer, "loss": loss, "data": batches}
