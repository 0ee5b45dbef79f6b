"""A small TF1 convnet written with ``tf.nn`` ops: conv 3x3x4 SAME + bias, ``tf.nn.relu``, max-pool 2,
flatten, dense 3; softmax cross-entropy on one-hot labels; gradient descent 0.1. Its layer outputs
are TF ops: the conv's bias add, the ReLU, the pool, the dense's bias add.
"""

import numpy as np
import tensorflow.compat.v1 as tf

SIDE, FILTERS, CLASSES = 6, 4, 3


def build_graph():
    x = tf.placeholder(tf.float32, [None, SIDE, SIDE, 2])
    y = tf.placeholder(tf.float32, [None, CLASSES])
    w = tf.Variable(tf.random_normal([3, 3, 2, FILTERS], stddev=0.5), name="conv_w")
    b = tf.Variable(tf.random_normal([FILTERS], stddev=0.5), name="conv_b")
    wd = tf.Variable(tf.random_normal([(SIDE // 2) ** 2 * FILTERS, CLASSES], stddev=0.3), name="dense_w")
    bd = tf.Variable(tf.zeros([CLASSES]), name="dense_b")
    h = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME"), b))
    h = tf.nn.max_pool(h, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
    h = tf.reshape(h, [-1, (SIDE // 2) ** 2 * FILTERS])
    logits = tf.matmul(h, wd) + bd
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, y, loss, train


def batches(n=50, batch_size=4, seed=13):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 2)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train, "data": batches}
