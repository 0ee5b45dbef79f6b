"""A two-layer MLP with leaky ReLU, a plain TF1 script (graph + Session).

``tf.nn.leaky_relu(h, 0.2)`` keeps its ``alpha`` as an op attribute, which TensorFlow stores in
float32 in every graph (0.20000000298): parity's float64 rebuild computes it with the float64 0.2
the author typed, and says so in its notes.
"""

import numpy as np
import tensorflow.compat.v1 as tf

N_IN, N_HIDDEN, N_OUT, BATCH = 20, 32, 10, 8
LEARNING_RATE = 0.1
ALPHA = 0.2


def build_graph():
    x = tf.placeholder(tf.float32, [None, N_IN], name="x")
    y = tf.placeholder(tf.int32, [None], name="y")
    with tf.variable_scope("hidden"):
        w1 = tf.get_variable("weights", [N_IN, N_HIDDEN], initializer=tf.glorot_uniform_initializer())
        b1 = tf.get_variable("biases", [N_HIDDEN], initializer=tf.zeros_initializer())
        hidden = tf.nn.leaky_relu(tf.matmul(x, w1) + b1, ALPHA)
    with tf.variable_scope("output"):
        w2 = tf.get_variable("weights", [N_HIDDEN, N_OUT], initializer=tf.glorot_uniform_initializer())
        b2 = tf.get_variable("biases", [N_OUT], initializer=tf.zeros_initializer())
        logits = tf.matmul(hidden, w2) + b2
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    optimizer = tf.train.GradientDescentOptimizer(LEARNING_RATE)
    return x, y, loss, optimizer, optimizer.minimize(loss)


def batches(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.standard_normal((BATCH, N_IN)), "y": rng.integers(0, N_OUT, BATCH)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, optimizer, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer, "data": batches}


if __name__ == "__main__":
    x, y, loss, optimizer, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, batch in enumerate(batches(100)):
            _, value = sess.run([train_op, loss], {x: batch["x"], y: batch["y"]})
            if step % 10 == 0:
                print(step, value)
