"""A tiny Keras 3 VAE, as the Keras 3 VAE example writes it: a ``Sampling`` layer drawing
``keras.random.normal`` with its own ``SeedGenerator``; otherwise keras_vae.py (the same network, the
KL term as ``add_loss`` in the layer, mean squared reconstruction error, SGD 0.05, trained with fit).
"""

import keras
import numpy as np
from keras import ops

IN, HIDDEN, LATENT = 12, 16, 3


class Sampling(keras.layers.Layer):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        mu, logvar = inputs
        eps = keras.random.normal(shape=ops.shape(mu), seed=self.seed_generator)
        self.add_loss(-0.5 * ops.mean(ops.sum(1 + logvar - ops.square(mu) - ops.exp(logvar), axis=-1)))
        return mu + ops.exp(0.5 * logvar) * eps


def build_model():
    x = keras.Input((IN,), name="x")
    h = keras.layers.Dense(HIDDEN, activation="relu", name="enc")(x)
    mu = keras.layers.Dense(LATENT, name="mu")(h)
    logvar = keras.layers.Dense(LATENT, name="logvar")(h)
    z = Sampling(name="z")([mu, logvar])
    out = keras.layers.Dense(IN, name="dec")(z)
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse")
    return model


def batches(n=50, batch_size=8, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=(batch_size, IN))
        yield {"x": x, "y": x}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer, "loss": "mse", "fit": True, "data": batches}


if __name__ == "__main__":
    model = build_model()
    for b in batches(10):
        print(model.train_on_batch(b["x"], b["y"]))
