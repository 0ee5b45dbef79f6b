"""TF1 ports: tf.compat.v1 graph code run in a Session, written as the seeds wrote it."""
