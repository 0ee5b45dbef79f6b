"""keras_string_loss.py on class indices: ``loss='sparse_categorical_crossentropy'``, parity's default
step (keras_string_loss_sparse_fit.py: the same trained by ``fit``)."""

PARITY_FRAMEWORK = "tf2"  # the model is built in keras_string_loss.py (tf_keras)

import numpy as np

from keras_string_loss import build


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": rng.integers(0, 3, 8)} for _ in range(n)]


def parity_program():
    model = build("sparse_categorical_crossentropy")
    return {"model": model, "optimizer": model.optimizer, "loss": "sparse_categorical_crossentropy", "data": batches}
