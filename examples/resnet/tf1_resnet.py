"""Outside the seeds' shapes: a small residual convnet with batch normalisation, a plain TF1 script.

32x32x3 images; stem conv 3x3x16 (no bias) + batch norm + ReLU; two residual blocks
(conv-BN-ReLU-conv-BN, + identity, ReLU) of 16 channels; global average pooling; dense 10;
sparse softmax cross-entropy on integer labels; MomentumOptimizer(0.05, 0.9); the batch-norm
moving averages run through UPDATE_OPS, as TF1 tutorials wire them.
"""

import numpy as np
import tensorflow.compat.v1 as tf
# tf.layers.conv2d / dense / batch_normalization (tf.compat.v1.layers needs Keras 2)
from tf_keras.src.legacy_tf_layers.convolutional import conv2d
from tf_keras.src.legacy_tf_layers.core import dense
from tf_keras.src.legacy_tf_layers.normalization import batch_normalization

CHANNELS, CLASSES = 16, 10


def conv_bn(x, name, training, relu=True):
    x = conv2d(x, CHANNELS, 3, padding="same", use_bias=False, name=name + "_conv")
    x = batch_normalization(x, training=training, name=name + "_bn")
    return tf.nn.relu(x) if relu else x


def residual_block(x, name, training):
    with tf.variable_scope(name):
        h = conv_bn(x, "a", training)
        h = conv_bn(h, "b", training, relu=False)
        return tf.nn.relu(h + x)


def build_graph():
    x = tf.placeholder(tf.float32, [None, 32, 32, 3], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    training = tf.placeholder_with_default(True, [], name="training")
    h = conv_bn(x, "stem", training)
    h = residual_block(h, "block1", training)
    h = residual_block(h, "block2", training)
    h = tf.reduce_mean(h, axis=[1, 2])
    logits = dense(h, CLASSES, name="fc")
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
        train_op = tf.train.MomentumOptimizer(0.05, 0.9).minimize(loss)
    return x, y, loss, train_op


def batches(n=100, batch_size=8, seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 32, 32, 3)), "y": rng.integers(0, CLASSES, batch_size)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, y, loss, train_op = build_graph()
    return {"inputs": {"x": x, "y": y}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    x, y, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, b in enumerate(batches(20)):
            _, value = sess.run([train_op, loss], feed_dict={x: b["x"], y: b["y"]})
            print(i, value)
