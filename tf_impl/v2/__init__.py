"""TF2 ports: eager execution, tf.function and Keras, as one writes TensorFlow today."""

from .. import framework_info  # noqa: F401


def keras_framework_info() -> dict:
    """TensorFlow's version and device, with the Keras version (for ports whose behaviour is Keras's)."""
    import keras

    info = dict(framework_info())
    info["version"] = f"{info['version']} (keras {keras.__version__})"
    return info
