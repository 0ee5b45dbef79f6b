"""A TF1 MLP (4-8-3) with momentum SGD on a staircase ``exponential_decay`` that halves the rate every
2 steps (``decay_steps`` = one epoch of 2 batches); the data is 2 epochs. Its torch equivalent is
``StepLR(step_size=1, gamma=0.5)`` stepped per epoch (torch_steplr.py).
"""

import numpy as np
import tensorflow.compat.v1 as tf

WD, LR = 0.01, 0.01


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def dense(x, units, name):
    with tf.variable_scope(name):
        w = tf.get_variable("kernel", [int(x.shape[-1]), units], initializer=tf.glorot_uniform_initializer())
        b = tf.get_variable("bias", [units], initializer=tf.zeros_initializer())
    return tf.matmul(x, w) + b


def parity_program():
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.placeholder(tf.float32, [None, 3], name="y")
    hidden = tf.nn.relu(dense(x, 8, "hidden"))
    logits = dense(hidden, 3, "out")
    data_loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=logits))
    loss = data_loss
    step = tf.train.get_or_create_global_step()
    rate = tf.train.exponential_decay(LR, step, decay_steps=2, decay_rate=0.5, staircase=True)
    opt = tf.train.MomentumOptimizer(rate, 0.9)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": opt.minimize(loss, global_step=step), "optimizer": opt,
            "data": batches}
