"""Habit: a Keras convnet built at import, as the Keras examples write it (model, compile, then fit).

``Conv2D(4, 3)`` + ReLU, ``Flatten``, ``Dense(10)`` on 28x28x1 inputs, SGD 0.05, categorical
cross-entropy from logits. The layers take Keras' automatic names (``conv2d``, ``dense``): a second
model built in the same process would be ``conv2d_1``, ``dense_1``.
"""

import numpy as np
import tensorflow as tf
from tensorflow import keras

model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(4, 3, activation="relu"),
    keras.layers.Flatten(),
    keras.layers.Dense(10),
])
optimizer = keras.optimizers.SGD(learning_rate=0.05)
loss = keras.losses.CategoricalCrossentropy(from_logits=True)


def batches():
    rng = np.random.default_rng(0)
    for _ in range(20):
        yield {"x": rng.random((8, 28, 28, 1)), "y": np.eye(10)[rng.integers(0, 10, 8)]}


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss, "data": batches}


if __name__ == "__main__":
    model.compile(optimizer=optimizer, loss=loss)
    for b in batches():
        print(model.train_on_batch(b["x"], b["y"]))
