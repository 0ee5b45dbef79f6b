"""A Keras 2 (tf_keras) convnet written both ways Keras allows an activation: as its own layer
(``Conv2D`` then ``Activation('relu')``) and inside a layer (``Conv2D(..., activation='relu')``,
``Dense(..., activation='relu')``).

Conv 3x3x8 (same) -> Activation relu -> Conv 3x3x8 (valid, relu) -> max-pool 2 -> flatten ->
Dense 16 (relu) -> Dense 4; categorical cross-entropy on logits; SGD 0.05; trained with fit. Its
port is torch_sequential_relu.py (an ``nn.Sequential`` with ``nn.ReLU`` modules).
"""

import numpy as np
import tf_keras as keras

SIDE, FILTERS, HIDDEN, CLASSES = 8, 8, 16, 4


def build_model():
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(FILTERS, 3, padding="same", name="conv"),
        keras.layers.Activation("relu", name="act"),
        keras.layers.Conv2D(FILTERS, 3, activation="relu", name="conv_2"),
        keras.layers.MaxPooling2D(2, name="pool"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(HIDDEN, activation="relu", name="dense"),
        keras.layers.Dense(CLASSES, name="logits"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def batches(n=50, batch_size=4, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 3)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer,
            "loss": keras.losses.CategoricalCrossentropy(from_logits=True), "fit": True, "data": batches}


if __name__ == "__main__":
    model = build_model()
    for b in batches(10):
        print(model.train_on_batch(b["x"], b["y"]))
