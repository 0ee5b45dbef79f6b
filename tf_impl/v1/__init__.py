"""TF1 ports: tf.compat.v1 graph code run in a Session, written as the seeds wrote it."""

from tf_impl import framework_info  # noqa: F401  (the registry of adapters reads it from the port package)
