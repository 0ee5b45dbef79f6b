"""A Keras (tf_keras) MLP (4-8-3) whose last Dense has ``activation="softmax"``, trained with categorical
cross-entropy on probabilities and momentum SGD: the same loss as torch ``log_softmax`` + ``NLLLoss``
(torch_logsoftmax_nll.py)."""

import numpy as np
import tf_keras as keras

LR = 0.01


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    optimizer = keras.optimizers.SGD(learning_rate=LR, momentum=0.9)
    return {"model": model, "optimizer": optimizer, "loss": keras.losses.CategoricalCrossentropy(), "data": batches}
