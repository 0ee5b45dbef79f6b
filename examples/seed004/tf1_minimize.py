"""Seed 004: what ``minimize()`` trains, a plain TF1 script.

``y = w1*x + w2*x + w3*x`` with x = 1, y = 1, ``w3`` a ``tf.constant`` (4): only the variables
on the path to the loss train; the constant never moves. Plain gradient descent.
"""

import numpy as np
import tensorflow.compat.v1 as tf


def build_graph():
    x = tf.placeholder(tf.float32, shape=[], name="x")
    y = tf.placeholder(tf.float32, shape=[], name="y")
    w1 = tf.Variable(4.0, name="w1")
    w2 = tf.Variable(4.0, name="w2")
    w3 = tf.constant(4.0, name="w3")
    prediction = w1 * x + w2 * x + w3 * x
    loss = tf.square(y - prediction)
    optimizer = tf.train.GradientDescentOptimizer(0.25)
    grads_and_vars = optimizer.compute_gradients(loss)
    train_op = optimizer.apply_gradients(grads_and_vars)
    return x, y, loss, optimizer, grads_and_vars, train_op


def batches(n=20):
    for _ in range(n):
        yield {"x": np.array(1.0), "y": np.array(1.0)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, optimizer, grads_and_vars, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer,
            "grads_and_vars": grads_and_vars, "data": batches}


if __name__ == "__main__":
    x, y, loss, optimizer, grads_and_vars, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for batch in batches():
            sess.run(train_op, feed_dict={x: batch["x"], y: batch["y"]})
        print(sess.run(grads_and_vars[0][1]), sess.run(grads_and_vars[1][1]))  # w1 + w2 -> -3
