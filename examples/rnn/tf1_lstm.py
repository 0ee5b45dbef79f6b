"""A TF1 sequence classifier: BasicLSTMCell (forget_bias 1.0) over 5 steps with static_rnn, a Dense head
on the last output, softmax cross-entropy, momentum SGD. The LSTM's kernel is TF1's fused [in+H, 4H] one, gates
i, j, f, o; its one bias gets forget_bias added at run time (see torch_lstm.py for the port).
"""

import numpy as np
import tensorflow.compat.v1 as tf

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


def build_graph():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    cell = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    outputs, _ = tf.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=x.dtype)
    logits = tf.layers.dense(outputs[-1], CLASSES, name="head")
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
