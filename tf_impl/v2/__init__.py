"""TF2 ports: eager execution, tf.function and Keras, as one writes TensorFlow today."""

from .. import framework_info  # noqa: F401
