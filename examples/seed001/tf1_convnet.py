"""Seed 001: the MNIST convnet of the TensorFlow-Examples tutorial, a plain TF1 script.

conv 5x5x32 SAME + ReLU, max-pool 2, conv 5x5x64, max-pool 2, fully connected 1024 + ReLU,
dropout (keep_prob 0.75, fed), 10 logits; every weight and bias random_normal(0, 1); Adam 1e-3
through ``minimize``. The data here is random digits-shaped input (the tutorial reads MNIST).
"""

import numpy as np
import tensorflow.compat.v1 as tf

learning_rate = 0.001
batch_size = 16  # the tutorial: 128
n_input = 784  # 28*28
n_classes = 10
dropout = 0.75  # probability to keep units


def conv2d(x, W, b, strides=1):
    x = tf.nn.conv2d(x, W, strides=[1, strides, strides, 1], padding="SAME")
    x = tf.nn.bias_add(x, b)
    return tf.nn.relu(x)


def maxpool2d(x, k=2):
    return tf.nn.max_pool(x, ksize=[1, k, k, 1], strides=[1, k, k, 1], padding="SAME")


def conv_net(x, weights, biases, dropout):
    x = tf.reshape(x, shape=[-1, 28, 28, 1])
    conv1 = conv2d(x, weights["wc1"], biases["bc1"])
    conv1 = maxpool2d(conv1, k=2)
    conv2 = conv2d(conv1, weights["wc2"], biases["bc2"])
    conv2 = maxpool2d(conv2, k=2)
    fc1 = tf.reshape(conv2, [-1, weights["wd1"].get_shape().as_list()[0]])
    fc1 = tf.add(tf.matmul(fc1, weights["wd1"]), biases["bd1"])
    fc1 = tf.nn.relu(fc1)
    fc1 = tf.nn.dropout(fc1, dropout)
    out = tf.add(tf.matmul(fc1, weights["out"]), biases["out"])
    return out


def build_graph():
    x = tf.placeholder(tf.float32, [None, n_input])
    y = tf.placeholder(tf.float32, [None, n_classes])
    keep_prob = tf.placeholder(tf.float32)
    weights = {
        "wc1": tf.Variable(tf.random_normal([5, 5, 1, 32])),
        "wc2": tf.Variable(tf.random_normal([5, 5, 32, 64])),
        "wd1": tf.Variable(tf.random_normal([7 * 7 * 64, 1024])),
        "out": tf.Variable(tf.random_normal([1024, n_classes])),
    }
    biases = {
        "bc1": tf.Variable(tf.random_normal([32])),
        "bc2": tf.Variable(tf.random_normal([64])),
        "bd1": tf.Variable(tf.random_normal([1024])),
        "out": tf.Variable(tf.random_normal([n_classes])),
    }
    pred = conv_net(x, weights, biases, keep_prob)
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(logits=pred, labels=y))
    optimizer = tf.train.AdamOptimizer(learning_rate=learning_rate).minimize(cost)
    return x, y, keep_prob, cost, optimizer


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        images = rng.random((batch_size, n_input))
        labels = np.eye(n_classes)[rng.integers(0, n_classes, batch_size)]
        yield {"x": images, "y": labels}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, keep_prob, cost, optimizer = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": cost, "train_op": optimizer,
            "feeds": {keep_prob: dropout}, "data": batches}


if __name__ == "__main__":
    x, y, keep_prob, cost, optimizer = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, batch in enumerate(batches()):
            _, loss = sess.run([optimizer, cost], feed_dict={x: batch["x"], y: batch["y"], keep_prob: dropout})
            if step % 10 == 0:
                print(step, loss)
