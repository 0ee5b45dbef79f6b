"""keras_string_loss_sparse.py trained by ``fit``: ``compile(loss='sparse_categorical_crossentropy')``."""

PARITY_FRAMEWORK = "tf2"  # the model is built in keras_string_loss.py (tf_keras)

from keras_string_loss import build
from keras_string_loss_sparse import batches


def parity_program():
    model = build("sparse_categorical_crossentropy")
    return {"model": model, "optimizer": model.optimizer, "fit": True, "data": batches}
