"""keras_string_loss.py trained by ``fit`` (``train_on_batch``): ``compile(loss='categorical_crossentropy')``."""

PARITY_FRAMEWORK = "tf2"  # the model is built in keras_string_loss.py (tf_keras)

from keras_string_loss import batches, build


def parity_program():
    model = build("categorical_crossentropy")
    return {"model": model, "optimizer": model.optimizer, "fit": True, "data": batches}
