"""A TF1 MLP 4-8-8-8-3 whose two 8x8 hidden layers are created in the other order than they are used.

The weights live in dicts built up front (a common TF1 tutorial habit), ``h2`` before ``h1``; the
forward pass uses ``h1`` first. By creation order the 8x8 kernels pair the wrong way round with a port's
``fc1``/``fc2``: parity decides them by the probe forward and prints how (tests/test_mapping_guess.py).
"""

import numpy as np
import tensorflow.compat.v1 as tf


def build_graph():
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    init = tf.glorot_uniform_initializer()
    weights = {"h2": tf.get_variable("h2", [8, 8], initializer=init),
               "h1": tf.get_variable("h1", [8, 8], initializer=init),
               "inp": tf.get_variable("inp", [4, 8], initializer=init),
               "out": tf.get_variable("out", [8, 3], initializer=init)}
    biases = {"b2": tf.get_variable("b2", [8], initializer=tf.random_normal_initializer(0, 0.1)),
              "b1": tf.get_variable("b1", [8], initializer=tf.random_normal_initializer(0, 0.1)),
              "binp": tf.get_variable("binp", [8], initializer=tf.random_normal_initializer(0, 0.1)),
              "bout": tf.get_variable("bout", [3], initializer=tf.zeros_initializer())}
    h = tf.nn.relu(tf.matmul(x, weights["inp"]) + biases["binp"])
    h = tf.nn.relu(tf.matmul(h, weights["h1"]) + biases["b1"])
    h = tf.nn.relu(tf.matmul(h, weights["h2"]) + biases["b2"])
    logits = tf.matmul(h, weights["out"]) + biases["bout"]
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, 4)).astype(np.float32), "y": rng.integers(0, 3, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, l = sess.run([train_op, loss], {x: batch["x"], y: batch["y"]})
            if i % 20 == 0:
                print(i, l)
