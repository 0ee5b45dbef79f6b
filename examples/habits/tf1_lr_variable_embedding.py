"""Habit: a TF1 language-model style program (as the Zaremba PTB tutorial writes it): word ids looked up in an
embedding table, the learning rate held in a non-trainable variable that the training loop sets with
``sess.run(lr.assign(...))`` (here: given to parity as ``"feeds": {lr: 0.5}``), and no ``data``: parity
draws the word ids below the vocabulary size it reads from the graph (VOCAB 6 < CLASSES 10).

Mean of the 4 tokens' 3-wide embeddings, a dense head to 10 classes, sparse softmax cross-entropy,
plain gradient descent at the fed rate. The port: torch_embedding_sgd.py.
"""

import tensorflow.compat.v1 as tf

VOCAB, DIM, TOKENS, CLASSES = 6, 3, 4, 10


def build_graph():
    ids = tf.placeholder(tf.int32, [None, TOKENS], name="ids")
    y = tf.placeholder(tf.int32, [None], name="y")
    table = tf.get_variable("embedding", [VOCAB, DIM], initializer=tf.random_uniform_initializer(-0.5, 0.5))
    w = tf.get_variable("head/w", [DIM, CLASSES], initializer=tf.random_uniform_initializer(-0.5, 0.5))
    b = tf.get_variable("head/b", [CLASSES], initializer=tf.zeros_initializer())
    logits = tf.matmul(tf.reduce_mean(tf.nn.embedding_lookup(table, ids), axis=1), w) + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    lr = tf.Variable(0.0, trainable=False, name="lr")  # set per epoch: sess.run(lr.assign(rate))
    train_op = tf.train.GradientDescentOptimizer(lr).minimize(loss)
    return ids, y, lr, loss, train_op


def parity_program():
    ids, y, lr, loss, train_op = build_graph()
    return {"inputs": {"x": ids, "y": y}, "loss": loss, "train_op": train_op, "feeds": {lr: 0.5}}
