"""TF2 ports: eager execution, tf.function and Keras, as one writes TensorFlow today."""

from tf_impl import framework_info  # noqa: F401


def keras_framework_info() -> dict:
    """TensorFlow's version and device, with the Keras version (for ports whose behaviour is Keras's)."""
    import keras

    info = dict(framework_info())
    info["version"] = f"{info['version']} (keras {keras.__version__})"
    return info


class VariablesPort:
    """``parameters()`` / ``load()`` for a TF2 port whose parameters are ``self.vars``, a dict of tf.Variable."""

    vars: dict

    def parameters(self):
        return {n: v.numpy() for n, v in self.vars.items()}

    def load(self, params):
        for n, v in self.vars.items():
            v.assign(params[n])
