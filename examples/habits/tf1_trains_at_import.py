"""Habit: a TF1 script that trains at import (no ``if __name__ == "__main__":``).

The graph is built at the top of the file and a short training loop runs right after it, as many
tutorial scripts do; ``parity_program()`` returns the graph's objects.
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

x = tf.placeholder(tf.float32, [None, 784], name="x")
y = tf.placeholder(tf.float32, [None, 10], name="y")
w1 = tf.Variable(tf.truncated_normal([784, 32], stddev=0.05), name="w1")
b1 = tf.Variable(tf.zeros([32]), name="b1")
w2 = tf.Variable(tf.truncated_normal([32, 10], stddev=0.05), name="w2")
b2 = tf.Variable(tf.zeros([10]), name="b2")
logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2
loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)

rng = np.random.default_rng(0)
sess = tf.Session()
sess.run(tf.global_variables_initializer())
for step in range(20):
    xb = rng.random((8, 784))
    yb = np.eye(10)[rng.integers(0, 10, 8)]
    print(step, sess.run([loss, train_op], {x: xb, y: yb})[0])


def parity_program():
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op}
