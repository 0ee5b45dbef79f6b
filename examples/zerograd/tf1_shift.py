"""A logit shift before a softmax: a gradient that is zero in exact arithmetic, a plain TF1 script.

A 6-16-4 tanh MLP whose logits get one learned scalar ``shift`` added to every class before
``softmax_cross_entropy``. A softmax is invariant to adding the same number to every logit, so the
loss does not depend on ``shift``: its gradient is sum(softmax - labels) = 0 in exact arithmetic,
and what a computer gets is rounding noise (~1e-18 in float64, ~1e-9 in float32) that Adam then
turns into tiny updates of ``shift``. A faithful port rounds differently: parity must call that
rounding, not a difference (docs/tolerance.md, "Values that are zero or cancel").
"""

import numpy as np
import tensorflow.compat.v1 as tf
from tf_keras.src.legacy_tf_layers.core import dense  # tf.layers.dense (tf.compat.v1.layers needs Keras 2)

batch_size = 8


def build_graph(lr=1e-3):
    x = tf.placeholder(tf.float32, shape=(None, 6), name="x")
    y = tf.placeholder(tf.float32, shape=(None, 4), name="y")
    hidden = tf.tanh(dense(x, 16, name="hidden"))
    shift = tf.Variable(0.0, name="shift")
    logits = dense(hidden, 4, name="output") + shift
    loss = tf.losses.softmax_cross_entropy(onehot_labels=y, logits=logits)
    optimizer = tf.train.AdamOptimizer(lr)
    return x, y, loss, optimizer.minimize(loss), optimizer


def batches(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 6)), "y": np.eye(4)[rng.integers(0, 4, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op, optimizer = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "optimizer": optimizer,
            "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op, _ = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, b in zip(range(100), batches()):
            _, value = sess.run([train_op, loss], feed_dict={x: b["x"], y: b["y"]})
            if step % 20 == 0:
                print(step, value)
