"""Habit: a TF1 script configured with ``tf.app.flags`` and started with ``tf.app.run()``.

A two-layer MLP on random 784-pixel digits, as the TF1 tutorials wrote it: the hyper-parameters are
flags (``--learning_rate``, ``--hidden``), read from ``FLAGS`` while the graph is built.
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

flags = tf.app.flags
flags.DEFINE_float("learning_rate", 0.1, "SGD learning rate")
flags.DEFINE_integer("hidden", 32, "hidden units")
flags.DEFINE_integer("batch_size", 8, "examples per batch")
FLAGS = flags.FLAGS


def build():
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.float32, [None, 10], name="y")
    w1 = tf.Variable(tf.truncated_normal([784, FLAGS.hidden], stddev=0.05), name="w1")
    b1 = tf.Variable(tf.zeros([FLAGS.hidden]), name="b1")
    w2 = tf.Variable(tf.truncated_normal([FLAGS.hidden, 10], stddev=0.05), name="w2")
    b2 = tf.Variable(tf.zeros([10]), name="b2")
    h = tf.nn.relu(tf.matmul(x, w1) + b1)
    logits = tf.matmul(h, w2) + b2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(FLAGS.learning_rate).minimize(loss)
    return x, y, loss, train_op


def parity_program():
    x, y, loss, train_op = build()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op}


def main(_):
    x, y, loss, train_op = build()
    rng = np.random.default_rng(0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step in range(100):
            xb = rng.random((FLAGS.batch_size, 784))
            yb = np.eye(10)[rng.integers(0, 10, FLAGS.batch_size)]
            print(step, sess.run([loss, train_op], {x: xb, y: yb})[0])


if __name__ == "__main__":
    tf.app.run()
