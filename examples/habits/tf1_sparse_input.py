"""Habit: a TF1 model fed a sparse input (``tf.sparse_placeholder``), as bag-of-words and graph tutorials do.

Inputs are 64 sparse features; ``tf.sparse_tensor_dense_matmul`` into 16 hidden units, ReLU, 4 logits,
softmax cross-entropy with one-hot labels, SGD 0.1. The data gives each batch's features as a
``tf.SparseTensorValue`` (indices, values, dense_shape), as a TF1 feed would.
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()


def batches():
    rng = np.random.default_rng(0)
    for _ in range(20):
        dense = rng.random((8, 64)) * (rng.random((8, 64)) < 0.2)
        indices = np.argwhere(dense != 0)
        features = tf.SparseTensorValue(indices, dense[dense != 0], dense.shape)
        yield {"x": features, "y": np.eye(4)[rng.integers(0, 4, 8)]}


def parity_program():
    x = tf.sparse_placeholder(tf.float32, shape=[None, 64], name="x")
    y = tf.placeholder(tf.float32, [None, 4], name="y")
    w1 = tf.Variable(tf.truncated_normal([64, 16], stddev=0.1), name="w1")
    b1 = tf.Variable(tf.zeros([16]), name="b1")
    w2 = tf.Variable(tf.truncated_normal([16, 4], stddev=0.1), name="w2")
    b2 = tf.Variable(tf.zeros([4]), name="b2")
    h = tf.nn.relu(tf.sparse_tensor_dense_matmul(x, w1) + b1)
    logits = tf.matmul(h, w2) + b2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "data": batches}
