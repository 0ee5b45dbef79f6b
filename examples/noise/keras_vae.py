"""A tiny Keras 2 (tf_keras) VAE: the reparameterisation ``z = mu + exp(0.5 * logvar) * eps`` in a
``Lambda`` layer, ``eps`` drawn with ``K.random_normal`` (as the Keras VAE example writes it).

12 -> 16 ReLU (enc) -> mu, logvar (3 each) -> z -> 12 (dec); mean squared reconstruction error plus
the KL term (mean over the batch, as ``add_loss``); SGD 0.05; trained with fit.
"""

import numpy as np
import tf_keras as keras
from tf_keras import backend as K

IN, HIDDEN, LATENT = 12, 16, 3


def sampling(args):
    mu, logvar = args
    eps = K.random_normal(shape=(K.shape(mu)[0], LATENT))
    return mu + K.exp(0.5 * logvar) * eps


def build_model():
    x = keras.Input((IN,), name="x")
    h = keras.layers.Dense(HIDDEN, activation="relu", name="enc")(x)
    mu = keras.layers.Dense(LATENT, name="mu")(h)
    logvar = keras.layers.Dense(LATENT, name="logvar")(h)
    z = keras.layers.Lambda(sampling, name="z")([mu, logvar])
    out = keras.layers.Dense(IN, name="dec")(z)
    model = keras.Model(x, out)
    model.add_loss(-0.5 * K.mean(K.sum(1 + logvar - K.square(mu) - K.exp(logvar), axis=-1)))
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
