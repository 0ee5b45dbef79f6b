"""A Keras (tf_keras) MLP (4-8-3, softmax head) compiled the way most Keras 2 programs are: the loss
named by a string, ``'categorical_crossentropy'``, momentum SGD, parity's default GradientTape step.
Keras averages the per-example losses over the batch (``sum_over_batch_size``): the same training as
torch ``log_softmax`` + ``NLLLoss`` (mean), torch_logsoftmax_nll.py."""

import numpy as np
import tf_keras as keras

LR = 0.01


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def build(loss):
    model = keras.Sequential([
        keras.Input((4,)),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=0.9), loss=loss)
    return model


def parity_program():
    model = build("categorical_crossentropy")
    return {"model": model, "optimizer": model.optimizer, "loss": "categorical_crossentropy", "data": batches}
