"""A TF1 classifier whose settings parity reads as facts: 12 -> 10 (ReLU, dropout keep 0.8) -> 4 logits.

RMSPropOptimizer(0.01, decay=0.9, epsilon=1e-10): TF1 starts its mean square at ones and adds epsilon
inside the square root. The loss is summed over the batch (tf.reduce_sum) plus 1e-3 * tf.nn.l2_loss of
the first kernel; gradients clipped to a global norm of 5.
"""
import numpy as np
import tensorflow.compat.v1 as tf

N_IN, N_HIDDEN, N_OUT, BATCH = 12, 10, 4, 8


def build_graph():
    x = tf.placeholder(tf.float32, (None, N_IN), name="x")
    y = tf.placeholder(tf.float32, (None, N_OUT), name="y")
    w1 = tf.Variable(tf.random_uniform((N_IN, N_HIDDEN), -0.05, 0.05), name="w1")
    b1 = tf.Variable(tf.zeros((N_HIDDEN,)), name="b1")
    w2 = tf.Variable(tf.truncated_normal((N_HIDDEN, N_OUT), stddev=0.1), name="w2")
    hidden = tf.nn.dropout(tf.nn.relu(tf.matmul(x, w1) + b1), rate=0.2)
    logits = tf.matmul(hidden, w2)
    xent = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    loss = xent + 1e-3 * tf.nn.l2_loss(w1)
    opt = tf.train.RMSPropOptimizer(0.01, decay=0.9, epsilon=1e-10)
    grads, variables = zip(*opt.compute_gradients(loss))
    grads, _ = tf.clip_by_global_norm(grads, 5.0)
    train_op = opt.apply_gradients(zip(grads, variables))
    return x, y, loss, train_op, opt


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((BATCH, N_IN)), "y": np.eye(N_OUT)[rng.integers(0, N_OUT, BATCH)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op, opt = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": opt, "data": batches}
