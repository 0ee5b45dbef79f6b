"""A Keras 2 (tf_keras) convnet with a channel dropout, ``SpatialDropout2D``, on its feature maps.

Conv 3x3x8 (same) + ReLU -> SpatialDropout2D(0.3) on the [N, 8, 8, 8] map (whole channels) -> flatten
-> dense 4; categorical cross-entropy; SGD 0.05; trained with fit. Its right port is
torch_conv_dropout2d.py (``nn.Dropout2d``); torch_conv_dropout.py drops single elements.
"""

import numpy as np
import tf_keras as keras

SIDE, FILTERS, CLASSES, RATE = 8, 8, 4, 0.3


def build_model():
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(FILTERS, 3, padding="same", activation="relu", name="conv"),
        keras.layers.SpatialDropout2D(RATE, name="drop"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(CLASSES, name="dense"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def batches(n=50, batch_size=8, seed=7):
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
