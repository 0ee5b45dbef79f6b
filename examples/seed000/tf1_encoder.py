"""Seed 000: the 1-16-16-1 "identity encoder", a plain TF1 graph + Session script.

The network learns to output twice its input's first element; the loss looks at
element [0, 0] only; plain gradient descent, gradients clipped by value between
compute_gradients and apply_gradients. Run it: ``python examples/seed000/tf1_encoder.py``.
"""

import numpy as np
import tensorflow.compat.v1 as tf

DEPTH_1 = 16
OUT_DEPTH = 1


def build_graph():
    initia = tf.random_normal_initializer(0, 1e-3)
    I = tf.placeholder(tf.float32, shape=[None, 1], name="I")  # input
    W = tf.get_variable("W", shape=[1, DEPTH_1], initializer=initia, dtype=tf.float32, trainable=True)
    b = tf.get_variable("b", shape=[DEPTH_1], initializer=initia, dtype=tf.float32, trainable=True)
    O = tf.nn.relu(tf.matmul(I, W) + b, name="O")
    W1 = tf.get_variable("W1", shape=[DEPTH_1, DEPTH_1], initializer=initia, dtype=tf.float32)
    b1 = tf.get_variable("b1", shape=[DEPTH_1], initializer=initia, dtype=tf.float32)
    O1 = tf.nn.relu(tf.matmul(O, W1) + b1, name="O1")
    W2 = tf.get_variable("W2", shape=[DEPTH_1, OUT_DEPTH], initializer=initia, dtype=tf.float32)
    b2 = tf.get_variable("b2", shape=[OUT_DEPTH], initializer=initia, dtype=tf.float32)
    O2 = tf.matmul(O1, W2) + b2
    O2_0 = tf.gather_nd(O2, [[0, 0]])
    estimate0 = 2.0 * O2_0
    eval_inp = tf.gather_nd(I, [[0, 0]])
    distance = tf.reduce_sum(tf.square(eval_inp - estimate0))
    opt = tf.train.GradientDescentOptimizer(1e-3)
    grads_and_vars = opt.compute_gradients(distance, [W, b, W1, b1, W2, b2])
    clipped_grads_and_vars = [(tf.clip_by_value(g, -4.5, 4.5), v) for g, v in grads_and_vars]
    train_op = opt.apply_gradients(clipped_grads_and_vars)
    return I, distance, opt, clipped_grads_and_vars, train_op


def batches(n=10000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": 2.0 * rng.random((1, 1)) - 1.0}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    I, distance, opt, capped, train_op = build_graph()
    return {"inputs": {"x": I}, "loss": distance, "train_op": train_op,
            "optimizer": opt, "grads_and_vars": capped, "data": batches}


if __name__ == "__main__":
    I, distance, _, _, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, d = sess.run([train_op, distance], feed_dict={I: batch["x"]})
            if i % 1000 == 0:
                print(i, d)
