"""A TF1 sequence classifier: a bidirectional LSTM (tf.nn.bidirectional_dynamic_rnn with a forward and a
backward BasicLSTMCell, forget_bias 1.0) over 5 steps, a Dense head on the two final states (forward, then
backward), softmax cross-entropy, momentum SGD. Each cell has TF1's fused [in+H, 4H] kernel (gates i, j, f, o)
and one bias that gets forget_bias added at run time. The port: torch_bilstm.py (nn.LSTM(bidirectional=True):
the forward cell is its `_l0` weights, the backward cell its `_l0_reverse` ones).
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


def build_graph():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    cell_fw = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    cell_bw = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    (out_fw, out_bw), (state_fw, state_bw) = tf.nn.bidirectional_dynamic_rnn(cell_fw, cell_bw, x, dtype=x.dtype)
    logits = tf.layers.dense(tf.concat([state_fw.h, state_bw.h], axis=1), CLASSES, name="head")
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
