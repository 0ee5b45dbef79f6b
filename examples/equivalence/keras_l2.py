"""A Keras (tf_keras) MLP (4-8-3) with ``kernel_regularizer=l2(WD / 2)`` on both Dense layers (gradient
``2 * (WD/2) * w = WD * w`` on the kernels only) and momentum SGD, trained with ``fit``. Its torch
equivalent decays the kernels only through parameter groups (torch_groups_kernel_wd.py)."""

import numpy as np
import tf_keras as keras

WD, LR = 0.01, 0.01


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    reg = keras.regularizers.l2(WD / 2)
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu", kernel_regularizer=reg, name="hidden"),
        keras.layers.Dense(3, kernel_regularizer=reg, name="out"),
    ])
    optimizer = keras.optimizers.SGD(learning_rate=LR, momentum=0.9)
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss)
    return {"model": model, "optimizer": optimizer, "loss": loss, "fit": True, "data": batches}
