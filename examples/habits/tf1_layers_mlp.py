"""Habit: a TF1 script written with ``tf.layers`` (``tf.compat.v1.layers.dense``), as TF 1.x tutorials did."""

import tensorflow.compat.v1 as tf

tf.disable_eager_execution()


def parity_program():
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.float32, [None, 10], name="y")
    h = tf.layers.dense(x, 32, activation=tf.nn.relu, name="hidden")
    logits = tf.layers.dense(h, 10, name="logits")
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op}
