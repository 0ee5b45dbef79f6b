"""keras_string_loss.py with a ``Loss`` object (``CategoricalCrossentropy()``, reduced by its own
``sum_over_batch_size``), trained by ``fit``."""

import tf_keras as keras

from keras_string_loss import batches, build


def parity_program():
    model = build(keras.losses.CategoricalCrossentropy())
    return {"model": model, "optimizer": model.optimizer, "fit": True, "data": batches}
