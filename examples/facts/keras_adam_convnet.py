"""A Keras convnet whose settings parity reads as facts: conv 3x3x4 -> BatchNorm -> ReLU ->
SpatialDropout2D(0.1) -> flatten -> dense 3 (softmax).

Adam(1e-3, beta_2=0.99, epsilon=1e-7, clipnorm=1.0) on an ExponentialDecay schedule; categorical
cross-entropy on the softmax's probabilities (Keras clips them); an L2(1e-4) kernel regulariser on
the dense layer (a loss term: 2e-4 * w in the gradient).
"""
import numpy as np
import tf_keras as keras

SIDE, CLASSES = 6, 3

model = keras.Sequential([
    keras.layers.Input((SIDE, SIDE, 2)),
    keras.layers.Conv2D(4, 3, padding="same", name="conv"),
    keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="bn"),
    keras.layers.ReLU(name="relu"),
    keras.layers.SpatialDropout2D(0.1, name="drop"),
    keras.layers.Flatten(name="flatten"),
    keras.layers.Dense(CLASSES, activation="softmax", kernel_regularizer=keras.regularizers.L2(1e-4), name="dense"),
])
schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=100, decay_rate=0.5)
optimizer = keras.optimizers.Adam(schedule, beta_2=0.99, epsilon=1e-7, clipnorm=1.0)


def batches(n=100, batch_size=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 2)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": keras.losses.CategoricalCrossentropy(), "data": batches}
