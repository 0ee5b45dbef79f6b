"""Habit: a TF1 recurrent tutorial reaching the cells through an alias (as ``from tensorflow.contrib import rnn``
did in TF 1.x): ``rnn.BasicLSTMCell`` and ``tf.nn.static_rnn``. Under TensorFlow 2.16+ (Keras 3) the cell
raises "`BasicLSTMCell` is not available with Keras 3."; parity reads the cell's name in the source and sets
TF_USE_LEGACY_KERAS=1 (tf_keras) before TensorFlow is imported.

Sequences of 5 steps of 3 features, an LSTM of 8 units (forget_bias 1.0), the last output into 4 logits,
softmax cross-entropy on one-hot labels, SGD 0.1. The port: torch_lstm_last.py.
"""

import tensorflow.compat.v1 as tf
from tensorflow.compat.v1.nn import rnn_cell as rnn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 8, 4


def parity_program():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES], name="x")
    y = tf.placeholder(tf.float32, [None, CLASSES], name="y")
    cell = rnn.BasicLSTMCell(HIDDEN, forget_bias=1.0)
    outputs, _ = tf.nn.static_rnn(cell, tf.unstack(x, STEPS, 1), dtype=tf.float32)
    w = tf.Variable(tf.random_normal([HIDDEN, CLASSES], stddev=0.3), name="out_w")
    b = tf.Variable(tf.zeros([CLASSES]), name="out_b")
    logits = tf.matmul(outputs[-1], w) + b
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op}
