"""Seed 002 (b): a 784-300-100-10 MLP with max-norm regularisation, a plain TF1 script.

``tf.layers.dense`` with He init, ReLU, ``tf.losses.softmax_cross_entropy`` on one-hot labels,
MomentumOptimizer(0.9) on ``polynomial_decay(0.01, global_step, 22000, 0.001, power=0.9)``, and
a max-norm "regularizer" that collects ``assign(clip_by_norm(kernel, 1.0, axes=1))`` ops run after
every training step.
"""

import numpy as np
import tensorflow.compat.v1 as tf
from tf_keras.src.legacy_tf_layers.core import dense  # tf.layers.dense (tf.compat.v1.layers needs Keras 2)

DECAY_STEPS = 22000
MAX_NORM = 1.0
batch_size = 50


def max_norm_regularizer(threshold=1.0, axes=1, name="max_norm", collection="max_norm"):
    def max_norm(weights):
        clipped = tf.clip_by_norm(weights, clip_norm=threshold, axes=axes)
        clip_weights = tf.assign(weights, clipped, name=name)
        tf.add_to_collection(collection, clip_weights)
        return None  # there is no regularization loss term
    return max_norm


def build_graph():
    max_norm_reg = max_norm_regularizer(threshold=MAX_NORM)
    X = tf.placeholder(tf.float32, shape=(None, 784), name="X")
    y = tf.placeholder(tf.int32, shape=(None), name="y")
    he_init = tf.variance_scaling_initializer()
    with tf.name_scope("dnn"):
        hidden1 = dense(X, 300, kernel_initializer=he_init, kernel_regularizer=max_norm_reg, name="hidden1")
        hidden1 = tf.nn.relu(hidden1)
        hidden2 = dense(hidden1, 100, kernel_initializer=he_init, kernel_regularizer=max_norm_reg, name="hidden2")
        hidden2 = tf.nn.relu(hidden2)
        logits = dense(hidden2, 10, kernel_initializer=he_init, name="output")
    with tf.name_scope("loss"):
        loss = tf.losses.softmax_cross_entropy(onehot_labels=y, logits=logits)
    learning_rate_init = 0.01
    global_step = tf.Variable(0, trainable=False)
    with tf.name_scope("train"):
        learning_rate = tf.train.polynomial_decay(
            learning_rate=learning_rate_init, global_step=global_step, decay_steps=DECAY_STEPS,
            end_learning_rate=learning_rate_init / 10, power=0.9, cycle=False)
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(update_ops):
            optimizer_op = tf.train.MomentumOptimizer(learning_rate=learning_rate, momentum=0.9).minimize(
                loss=loss, var_list=tf.trainable_variables(), global_step=global_step)
    clip_all_weights = tf.get_collection("max_norm")
    return X, y, loss, optimizer_op, clip_all_weights


def batches(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((batch_size, 784)), "y": np.eye(10)[rng.integers(0, 10, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    X, y, loss, optimizer_op, clip_all_weights = build_graph()
    return {"inputs": {"x": X, "y": y}, "loss": loss, "train_op": optimizer_op,
            "post_ops": clip_all_weights, "data": batches}


if __name__ == "__main__":
    X, y, loss, optimizer_op, clip_all_weights = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for step, batch in enumerate(batches(200)):
            sess.run(optimizer_op, feed_dict={X: batch["x"], y: batch["y"]})
            sess.run(clip_all_weights)
            if step % 20 == 0:
                print(step, loss.eval(feed_dict={X: batch["x"], y: batch["y"]}))
