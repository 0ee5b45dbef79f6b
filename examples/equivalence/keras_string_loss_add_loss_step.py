"""keras_string_loss_add_loss.py under parity's default step (no ``fit``): the ``add_loss`` term is
the whole loss (compiled without one)."""

PARITY_FRAMEWORK = "tf2"  # the model is built in keras_string_loss_add_loss.py (tf_keras)

from keras_string_loss_add_loss import parity_program as _fit_program


def parity_program():
    program = _fit_program()
    del program["fit"]
    return program
