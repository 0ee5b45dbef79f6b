"""A TF1 sequence tagger: a bidirectional LSTM (tf.nn.bidirectional_dynamic_rnn with a forward and a backward
BasicLSTMCell, forget_bias 1.0) over 5 steps, its two sequence outputs concatenated (forward, then backward:
TF gives the backward one back in input time order), a Dense head on every step, softmax cross-entropy on one
label per step, momentum SGD. The port: torch_bilstm_tagger.py (nn.LSTM(bidirectional=True), whose sequence
output is this concatenation already: [forward | backward] on the last axis).
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 3


def build_graph():
    x = tf.placeholder(tf.float32, [None, STEPS, FEATURES], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")  # one label per step, flattened: [N * STEPS]
    cell_fw = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    cell_bw = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    (out_fw, out_bw), _ = tf.nn.bidirectional_dynamic_rnn(cell_fw, cell_bw, x, dtype=x.dtype)
    outputs = tf.concat([out_fw, out_bw], axis=2)  # [N, STEPS, 2H]
    logits = tf.layers.dense(tf.reshape(outputs, [-1, 2 * HIDDEN]), CLASSES, name="head")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    return x, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=8 * STEPS)}


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
