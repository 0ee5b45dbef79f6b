"""A TF1 encoder-decoder (two input sequences): an encoder LSTM (tf.nn.dynamic_rnn over a BasicLSTMCell) reads
the source sequence, its final state (c, h) starts a decoder LSTM (another dynamic_rnn over a BasicLSTMCell)
that reads the target sequence (teacher forcing), a Dense head on every decoder step, softmax cross-entropy on
one label per step, momentum SGD. Each cell has TF1's fused [in+H, 4H] kernel (gates i, j, f, o) and one bias that gets
forget_bias 1.0 added at run time. The port: torch_seq2seq.py (two nn.LSTMs, the decoder started from the
encoder's (h, c)).
"""

import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

SRC, TGT, FEATURES, HIDDEN, CLASSES = 6, 4, 3, 5, 3


def build_graph():
    source = tf.placeholder(tf.float32, [None, SRC, FEATURES], name="source")
    target = tf.placeholder(tf.float32, [None, TGT, FEATURES], name="target")
    y = tf.placeholder(tf.int64, [None], name="y")  # one label per decoder step, flattened: [N * TGT]
    with tf.variable_scope("encoder"):
        _, state = tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(HIDDEN), source, dtype=source.dtype)
    with tf.variable_scope("decoder"):
        outputs, _ = tf.nn.dynamic_rnn(tf.nn.rnn_cell.BasicLSTMCell(HIDDEN), target, initial_state=state)
    logits = tf.layers.dense(tf.reshape(outputs, [-1, HIDDEN]), CLASSES, name="head")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.MomentumOptimizer(0.1, 0.9).minimize(loss)
    return source, target, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"source": rng.normal(size=(8, SRC, FEATURES)).astype(np.float32),
               "target": rng.normal(size=(8, TGT, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=8 * TGT)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    source, target, y, loss, train_op = build_graph()
    return {"inputs": {"source": source, "target": target, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    source, target, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, l = sess.run([train_op, loss], {source: batch["source"], target: batch["target"], y: batch["y"]})
            if i % 20 == 0:
                print(i, l)
