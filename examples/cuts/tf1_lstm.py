"""A TF1 sequence classifier: ``BasicLSTMCell(8)`` run by ``tf.nn.dynamic_rnn`` over [N, 5, 3] inputs,
a dense layer on the final state's h; softmax cross-entropy; gradient descent 0.1. Its layer outputs
include the LSTM's sequence output and final state (c, h).
"""

import numpy as np
import tensorflow.compat.v1 as tf

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 8, 4


def build_graph():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES])
    y = tf.placeholder(tf.float32, [None, CLASSES])
    cell = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN, forget_bias=0.0)
    outputs, state = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)
    w = tf.Variable(tf.random_normal([HIDDEN, CLASSES], stddev=0.3), name="dense_w")
    b = tf.Variable(tf.zeros([CLASSES]), name="dense_b")
    logits = tf.matmul(state.h, w) + b
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits)) + 0.0 * tf.reduce_sum(outputs)
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, y, loss, train


def batches(n=50, batch_size=4, seed=17):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, STEPS, FEATURES)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train, "data": batches}
