"""A TF1 bag-of-words classifier: an embedding table looked up with tf.nn.embedding_lookup (its gradient is
sparse: IndexedSlices, the looked-up rows only), the mean over the 6 tokens, a Dense head, softmax
cross-entropy, Adagrad (its sparse update: the looked-up rows only). The port: torch_embedding.py (nn.Embedding).
"""

import numpy as np
import tensorflow.compat.v1 as tf

VOCAB, DIM, TOKENS, CLASSES = 20, 5, 6, 3


def build_graph():
    ids = tf.placeholder(tf.int64, [None, TOKENS], name="ids")
    y = tf.placeholder(tf.int64, [None], name="y")
    table = tf.get_variable("embedding/W", [VOCAB, DIM], initializer=tf.random_uniform_initializer(-1.0, 1.0))
    h = tf.reduce_mean(tf.nn.embedding_lookup(table, ids), axis=1)
    logits = tf.layers.dense(h, CLASSES, name="head")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    train_op = tf.train.AdagradOptimizer(0.5).minimize(loss)  # sparse: ResourceSparseApplyAdagrad
    return ids, y, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.integers(0, VOCAB, size=(8, TOKENS)), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    ids, y, loss, train_op = build_graph()
    return {"inputs": {"x": ids, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    ids, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, l = sess.run([train_op, loss], {ids: batch["x"], y: batch["y"]})
            if i % 20 == 0:
                print(i, l)
