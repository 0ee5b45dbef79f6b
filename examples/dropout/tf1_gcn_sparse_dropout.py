"""A TF1 graph convolutional network in the style of Kipf & Welling's ``gcn`` code: a hand-written
dropout on the input features (``floor(keep_prob + random_uniform)``, the form its ``sparse_dropout``
uses, here on dense features) and ``tf.nn.dropout(h, 1 - dropout)`` of a fed placeholder on the hidden
layer; each layer is ``adj @ (x @ W) + b``.

10 nodes, 6 features -> 16 ReLU -> 3 classes; softmax cross-entropy on one-hot labels of every node;
gradient descent 0.2. The adjacency is a fixed ring, normalised D^-1/2 (A + I) D^-1/2.
"""

import numpy as np
import tensorflow.compat.v1 as tf

NODES, FEATURES, HIDDEN, CLASSES, DROPOUT = 10, 6, 16, 3, 0.5


def normalized_ring(n):
    a = np.eye(n)
    for i in range(n):
        a[i, (i + 1) % n] = a[(i + 1) % n, i] = 1.0
    d = 1.0 / np.sqrt(a.sum(1))
    return a * d[:, None] * d[None, :]


def dropout(x, keep_prob):
    random_tensor = keep_prob + tf.random_uniform(tf.shape(x))
    mask = tf.floor(random_tensor)
    return x * mask / keep_prob


def build_graph():
    x = tf.placeholder(tf.float32, [NODES, FEATURES])
    y = tf.placeholder(tf.float32, [NODES, CLASSES])
    drop = tf.placeholder_with_default(0.0, shape=(), name="dropout")
    adj = tf.constant(normalized_ring(NODES), tf.float32)
    with tf.variable_scope("gc1"):
        w1 = tf.get_variable("weights", [FEATURES, HIDDEN], initializer=tf.glorot_uniform_initializer())
        b1 = tf.get_variable("bias", [HIDDEN], initializer=tf.zeros_initializer())
        h = dropout(x, 1.0 - drop)
        h = tf.nn.relu(tf.matmul(adj, tf.matmul(h, w1)) + b1)
    with tf.variable_scope("gc2"):
        w2 = tf.get_variable("weights", [HIDDEN, CLASSES], initializer=tf.glorot_uniform_initializer())
        b2 = tf.get_variable("bias", [CLASSES], initializer=tf.zeros_initializer())
        h = tf.nn.dropout(h, 1.0 - drop)
        logits = tf.matmul(adj, tf.matmul(h, w2)) + b2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.2).minimize(loss)
    return x, y, drop, loss, train


def batches(n=50, seed=11):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(NODES, FEATURES))
    labels = np.eye(CLASSES)[rng.integers(0, CLASSES, NODES)]
    for _ in range(n):  # full-batch training: the same graph every step
        yield {"x": features, "y": labels}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, drop, loss, train = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train, "feeds": {drop: DROPOUT}, "data": batches}


if __name__ == "__main__":
    x, y, drop, loss, train = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for b in batches():
            print(sess.run([train, loss], {x: b["x"], y: b["y"], drop: DROPOUT})[1])
