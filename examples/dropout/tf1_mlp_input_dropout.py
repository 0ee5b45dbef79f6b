"""A TF1 MLP that drops its input (tf.nn.dropout(x, rate=0.5)), where its port torch_mlp_dropout.py drops
the hidden layer instead (``F.dropout(p=0.5)`` after the ReLU): one site each, of shapes that cannot meet
([N, 20] and [N, 32]). parity must find that difference at step 0 (each drops with a mask of its own
shape), never agree.

20 (dropout 0.5) -> 32 ReLU -> 5 logits; softmax cross-entropy on one-hot labels; plain gradient descent 0.1.
"""

import numpy as np
import tensorflow.compat.v1 as tf

IN, HIDDEN, CLASSES = 20, 32, 5


def build_graph():
    x = tf.placeholder(tf.float32, [None, IN])
    y = tf.placeholder(tf.float32, [None, CLASSES])
    w1 = tf.Variable(tf.random_normal([IN, HIDDEN], stddev=0.3), name="w1")
    b1 = tf.Variable(tf.zeros([HIDDEN]), name="b1")
    w2 = tf.Variable(tf.random_normal([HIDDEN, CLASSES], stddev=0.3), name="w2")
    b2 = tf.Variable(tf.zeros([CLASSES]), name="b2")
    h = tf.nn.relu(tf.matmul(tf.nn.dropout(x, rate=0.5), w1) + b1)
    logits = tf.matmul(h, w2) + b2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, y, loss, train


def batches(n=50, batch_size=8, seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, IN)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train, "data": batches}


if __name__ == "__main__":
    x, y, loss, train = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for b in batches():
            print(sess.run([train, loss], {x: b["x"], y: b["y"]})[1])
