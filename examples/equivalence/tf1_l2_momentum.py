"""A TF1 MLP (4-8-3) minimising the data loss plus ``WD * sum(tf.nn.l2_loss(v))`` over every
trainable variable, with momentum SGD: L2 regularisation written in the loss, as TF1 tutorials do.
Its torch equivalent is ``SGD(momentum=0.9, weight_decay=WD)`` (torch_sgd_wd.py): ``d/dw WD*||w||^2/2 = WD*w``.
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
    loss = data_loss + WD * tf.add_n([tf.nn.l2_loss(v) for v in tf.trainable_variables()])
    opt = tf.train.MomentumOptimizer(LR, 0.9)
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt,
            "data": batches}
