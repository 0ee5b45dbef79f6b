"""Seed 003: a Keras 2 (tf_keras) convnet with BatchNormalization and dropout, trained with fit.

Conv 3x3x8 (same, no bias) -> BatchNormalization -> ReLU -> max-pool 2 -> flatten -> dropout
(rate 0.25) -> dense 10 softmax; categorical cross-entropy on one-hot labels;
SGD(lr 0.1, momentum 0.9, nesterov). ``fit`` feeds the learning phase (training=True), so the
BatchNormalization normalises with batch statistics and updates its moving averages.
"""

import numpy as np
import tf_keras as keras

SIDE, FILTERS, CLASSES, KEEP = 32, 8, 10, 0.75


def build_model():
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(FILTERS, 3, padding="same", use_bias=False, name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(name="relu"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dropout(1.0 - KEEP, name="dropout"),
        keras.layers.Dense(CLASSES, activation="softmax", name="dense"),
    ])
    optimizer = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    return model


def batches(n=100, batch_size=16, seed=3):
    """CIFAR-shaped stand-in data: images [N, 32, 32, 3], one-hot labels."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 3)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer, "loss": keras.losses.CategoricalCrossentropy(),
            "fit": True, "data": batches}


if __name__ == "__main__":
    model = build_model()
    for b in batches(20):
        print(model.train_on_batch(b["x"], b["y"]))
