"""TF32 is a stated setting on the TensorFlow side too: the capture adapters turn it off as torch_impl does, and a
program that turns it on itself keeps it, with a note and the ``tf32`` fact (a no-op on a CPU: the call and the
record are what is tested here)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.tf]


def _tf1_program(enable_tf32: bool):
    def parity_program():
        import tensorflow.compat.v1 as tf

        if enable_tf32:
            tf.config.experimental.enable_tensor_float_32_execution(True)
        x = tf.placeholder(tf.float32, shape=[None, 3], name="x")
        y = tf.placeholder(tf.float32, shape=[None, 1], name="y")
        pred = tf.matmul(x, tf.Variable(np.ones((3, 1), np.float32), name="w"))
        loss = tf.reduce_mean(tf.square(pred - y))
        opt = tf.train.GradientDescentOptimizer(0.1)
        gv = opt.compute_gradients(loss)
        return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": opt.apply_gradients(gv), "optimizer": opt,
                "grads_and_vars": gv}
    return parity_program


def _keras_program(enable_tf32: bool):
    def parity_program():
        import tensorflow as tf

        if enable_tf32:
            tf.config.experimental.enable_tensor_float_32_execution(True)
        model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(1)])
        return {"model": model, "optimizer": tf.keras.optimizers.SGD(0.1), "loss": tf.keras.losses.MeanSquaredError()}
    return parity_program


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_capture_turns_tf32_off(version):
    import tensorflow as tf

    from tf_impl.v1.capture import TF32_NOTE
    capture = __import__(f"tf_impl.{version}.capture", fromlist=["capture"]).capture
    tf.config.experimental.enable_tensor_float_32_execution(True)  # TensorFlow's own default
    make = _tf1_program if version == "v1" else _keras_program
    try:
        prog = capture(make(False), dtype="float32")
        assert tf.config.experimental.tensor_float_32_execution_enabled() is False
        assert prog.tf32 is False and TF32_NOTE not in prog.notes()
        close = getattr(prog, "close", None)
        if close:
            close()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(True)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_program_that_keeps_tf32_is_recorded(version):
    import tensorflow as tf

    from tf_impl.v1.capture import TF32_NOTE
    capture = __import__(f"tf_impl.{version}.capture", fromlist=["capture"]).capture
    make = _tf1_program if version == "v1" else _keras_program
    try:
        prog = capture(make(True), dtype="float32")
        assert tf.config.experimental.tensor_float_32_execution_enabled() is True
        assert prog.tf32 is True and TF32_NOTE in prog.notes()
        close = getattr(prog, "close", None)
        if close:
            close()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(True)
