"""Habit: a TF1 convnet fed flat ``[N, 784]`` images and one-hot labels, as the MNIST tutorials feed
``mnist.train.next_batch``; the graph reshapes them to ``[N, 28, 28, 1]`` itself.

conv 3x3x4 VALID + ReLU, flatten, fully connected 10; SGD 0.05, softmax cross-entropy.
"""

import tensorflow.compat.v1 as tf

tf.disable_eager_execution()


def parity_program():
    x = tf.placeholder(tf.float32, [None, 784], name="x")
    y = tf.placeholder(tf.float32, [None, 10], name="y")
    image = tf.reshape(x, [-1, 28, 28, 1])
    w = tf.Variable(tf.truncated_normal([3, 3, 1, 4], stddev=0.1), name="conv_w")
    b = tf.Variable(tf.zeros([4]), name="conv_b")
    conv = tf.nn.relu(tf.nn.conv2d(image, w, strides=[1, 1, 1, 1], padding="VALID") + b)
    flat = tf.reshape(conv, [-1, 26 * 26 * 4])
    wd = tf.Variable(tf.truncated_normal([26 * 26 * 4, 10], stddev=0.01), name="fc_w")
    bd = tf.Variable(tf.zeros([10]), name="fc_b")
    logits = tf.matmul(flat, wd) + bd
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.GradientDescentOptimizer(0.05).minimize(loss)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op}
