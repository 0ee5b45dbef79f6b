"""A TF1 sequence classifier: a GRUCell over 5 steps (tf.nn.dynamic_rnn), a Dense head on the final state, softmax
cross-entropy, momentum SGD. TF1's GRUCell applies its reset gate to the state *before* the candidate's matmul:
r, u = sigmoid([x, h] @ gates/kernel + gates/bias); c = tanh([x, r * h] @ candidate/kernel + candidate/bias);
h' = u * h + (1 - u) * c. torch's nn.GRU applies it after (r * (W_hn h + b_hn)): another function, so the port
writes TF1's cell out (torch_gru_cell.py); an nn.GRU port is refused (pitfall gru-reset-after).
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


def build_graph():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    _, state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.GRUCell(HIDDEN), x, dtype=x.dtype)
    logits = tf.layers.dense(state, CLASSES, name="head")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    return x, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, l = sess.run([train_op, loss], {x: batch["x"], y: batch["y"]})
            if i % 20 == 0:
                print(i, l)
