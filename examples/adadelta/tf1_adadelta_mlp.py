"""A small TF1 classifier trained with Adadelta: 20 -> 16 (ReLU) -> 3 logits.

Weights from truncated_normal(stddev 0.1), biases 0.1; softmax cross-entropy (mean over the batch);
AdadeltaOptimizer(learning_rate=1.0, rho=0.95, epsilon=1e-6). The data: inputs in [0, 1), 32 a batch.
"""
import numpy as np
import tensorflow.compat.v1 as tf

N_IN, N_HIDDEN, N_OUT = 20, 16, 3
BATCH = 32


def build_graph():
    x = tf.placeholder(tf.float32, (None, N_IN), name="x")
    y = tf.placeholder(tf.float32, (None, N_OUT), name="y")
    w1 = tf.Variable(tf.truncated_normal((N_IN, N_HIDDEN), stddev=0.1), name="w1")
    b1 = tf.Variable(tf.constant(0.1, shape=(N_HIDDEN,)), name="b1")
    w2 = tf.Variable(tf.truncated_normal((N_HIDDEN, N_OUT), stddev=0.1), name="w2")
    b2 = tf.Variable(tf.constant(0.1, shape=(N_OUT,)), name="b2")
    logits = tf.matmul(tf.nn.relu(tf.matmul(x, w1) + b1), w2) + b2
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    train_op = tf.train.AdadeltaOptimizer(learning_rate=1.0, rho=0.95, epsilon=1e-6).minimize(loss)
    return x, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((BATCH, N_IN)), "y": np.eye(N_OUT)[rng.integers(0, N_OUT, BATCH)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, b in enumerate(batches(20)):
            _, l = sess.run([train_op, loss], {x: b["x"], y: b["y"]})
            print(i, l)
