"""The Keras 2 ``add_loss`` idiom (a VAE's): a functional autoencoder (4-8-4) whose loss is a symbolic
tensor of its input and output added with ``model.add_loss``, compiled without a loss, trained by
``fit``: the mean squared reconstruction error, as torch_string_loss_add_loss.py's ``mse_loss``."""

import numpy as np
import tf_keras as keras
from tf_keras import backend as K

LR = 0.01


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4))} for _ in range(n)]


def parity_program():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(4, name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.add_loss(K.mean(K.square(outputs - inputs)))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=LR, momentum=0.9))
    return {"model": model, "optimizer": model.optimizer, "fit": True, "targets": [], "data": batches}
