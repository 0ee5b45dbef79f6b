"""A character-level LSTM language model, a plain TF1 script (graph + Session).

One-hot characters into ``tf.nn.dynamic_rnn`` over a ``BasicLSTMCell`` (one fused kernel
``[vocab + hidden, 4 * hidden]``, gates i, j, f, o, ``forget_bias`` 1.0 added at run time),
a softmax layer over the vocabulary at every time step, sparse softmax cross-entropy against
the next character, gradient descent with the gradients clipped to a global norm of 5 (as the
TF PTB language-model tutorial trains). ``dynamic_rnn`` is a ``tf.while_loop`` with TensorArrays: parity
rebuilds it in float64 like any other graph.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.nn.rnn_cell under TF 2.16+ needs tf_keras (Keras 2)

import numpy as np
import tensorflow.compat.v1 as tf

VOCAB, SEQ_LEN, HIDDEN, BATCH = 12, 6, 16, 4
LEARNING_RATE = 0.5
MAX_GRAD_NORM = 5.0


def build_graph():
    x = tf.placeholder(tf.int32, [None, SEQ_LEN], name="x")
    y = tf.placeholder(tf.int32, [None, SEQ_LEN], name="y")
    inputs = tf.one_hot(x, VOCAB)
    cell = tf.nn.rnn_cell.BasicLSTMCell(HIDDEN)
    outputs, _ = tf.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
    with tf.variable_scope("softmax"):
        softmax_w = tf.get_variable("softmax_w", [HIDDEN, VOCAB])
        softmax_b = tf.get_variable("softmax_b", [VOCAB], initializer=tf.zeros_initializer())
    logits = tf.matmul(tf.reshape(outputs, [-1, HIDDEN]), softmax_w) + softmax_b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(y, [-1]), logits=logits))
    tvars = tf.trainable_variables()
    grads, _ = tf.clip_by_global_norm(tf.gradients(loss, tvars), MAX_GRAD_NORM)
    optimizer = tf.train.GradientDescentOptimizer(LEARNING_RATE)
    grads_and_vars = list(zip(grads, tvars))
    train_op = optimizer.apply_gradients(grads_and_vars)
    return x, y, loss, optimizer, grads_and_vars, train_op


def batches(n=1000, seed=0):
    """Random text: each target is the next character of the input."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        text = rng.integers(0, VOCAB, (BATCH, SEQ_LEN + 1))
        yield {"x": text[:, :-1], "y": text[:, 1:]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, optimizer, grads_and_vars, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer,
            "grads_and_vars": grads_and_vars, "data": batches}


if __name__ == "__main__":
    x, y, loss, optimizer, grads_and_vars, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, batch in enumerate(batches(100)):
            _, value = sess.run([train_op, loss], {x: batch["x"], y: batch["y"]})
            if step % 10 == 0:
                print(step, value)
