"""A learning rate far too large: a TF1 linear regression that diverges to inf, then NaN.

y = x w + b on 3 features, mean squared error, plain gradient descent with lr 1e3: every step
multiplies the error by ~1e3, so the weights overflow within a few steps (float32 sooner than
float64) and inf - inf then gives NaN. Its torch port (torch_blowup.py) diverges the same way:
parity must not call two runs that are both NaN "exact" (the first NaN or inf on either side is
reported, and the verdict is "nonfinite", exit code 1).
"""

import numpy as np
import tensorflow.compat.v1 as tf

LR = 1e3


def build_graph():
    x = tf.placeholder(tf.float32, shape=(None, 3), name="x")
    y = tf.placeholder(tf.float32, shape=(None, 1), name="y")
    w = tf.Variable(tf.ones([3, 1]) * 0.1, name="w")
    b = tf.Variable(tf.zeros([1]), name="b")
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
    optimizer = tf.train.GradientDescentOptimizer(LR)
    return x, y, loss, optimizer.minimize(loss), optimizer


def batches(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=(4, 3))
        yield {"x": x, "y": x @ np.array([[1.0], [-2.0], [0.5]])}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op, optimizer = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer, "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op, _ = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, b in zip(range(20), batches()):
            _, value = sess.run([train_op, loss], feed_dict={x: b["x"], y: b["y"]})
            print(step, value)
