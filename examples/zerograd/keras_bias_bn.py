"""A convolution bias right before BatchNormalization: a gradient that cancels, a plain Keras 2 script.

Conv 3x3x8 (same, with its bias) on 6x6x3 images -> BatchNormalization -> ReLU -> global average
pooling -> Dense 4; softmax cross-entropy on one-hot labels (from logits); Adam(1e-3).
BatchNormalization subtracts the batch mean, so adding a constant to its input changes nothing: the
convolution's bias has gradient zero in exact arithmetic, each element a sum over the batch and the
pixels that cancels. Both frameworks compute rounding noise
there (~1e-17 in float64) and Adam turns it into tiny updates; parity must call that rounding
(docs/tolerance.md, "Values that are zero or cancel").
"""

import numpy as np
import tf_keras as keras


def build_model():
    model = keras.Sequential([
        keras.Input((6, 6, 3)),
        keras.layers.Conv2D(8, 3, padding="same", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.ReLU(name="relu"),
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(4, name="logits"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    return model


def batches(n=1000, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 6, 6, 3)), "y": np.eye(4)[rng.integers(0, 4, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer, "loss": keras.losses.CategoricalCrossentropy(from_logits=True),
            "fit": True, "data": batches}


if __name__ == "__main__":
    model = build_model()
    for b in batches(20):
        print(model.train_on_batch(b["x"], b["y"]))
