"""A TF1 decoder as DCGAN-style generators write it: a dense layer to a 4x4x8 map, then a transposed
convolution (``tf.nn.conv2d_transpose``, 4x4 kernel, stride 2, SAME) up to 8x8x3, trained by gradient descent on
a mean squared error. Its kernel is ``[kh, kw, out, in]``; torch's ``ConvTranspose2d`` weight is
``[in, out, kh, kw]`` (torch_deconv.py): parity maps the two automatically (tests/test_mapping_state.py).
"""

import numpy as np
import tensorflow.compat.v1 as tf

Z, BATCH = 6, 8


def build_graph():
    z = tf.placeholder(tf.float32, [None, Z], name="z")
    target = tf.placeholder(tf.float32, [None, 8, 8, 3], name="target")
    with tf.variable_scope("g_h0"):
        w = tf.get_variable("w", [Z, 4 * 4 * 8], initializer=tf.random_normal_initializer(stddev=0.1))
        b = tf.get_variable("b", [4 * 4 * 8], initializer=tf.zeros_initializer())
        h0 = tf.nn.relu(tf.reshape(tf.matmul(z, w) + b, [-1, 4, 4, 8]))
    with tf.variable_scope("g_h1"):
        k = tf.get_variable("w", [4, 4, 3, 8], initializer=tf.random_normal_initializer(stddev=0.1))
        kb = tf.get_variable("biases", [3], initializer=tf.zeros_initializer())
        out = tf.nn.conv2d_transpose(h0, k, output_shape=[tf.shape(z)[0], 8, 8, 3], strides=[1, 2, 2, 1], padding="SAME")
        out = tf.reshape(tf.nn.bias_add(out, kb), [-1, 8, 8, 3])
    loss = tf.reduce_mean(tf.square(tf.tanh(out) - target))
    train_op = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    return z, target, loss, train_op


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"z": rng.normal(size=(BATCH, Z)).astype(np.float32),
               "target": rng.uniform(-1, 1, size=(BATCH, 8, 8, 3)).astype(np.float32)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    z, target, loss, train_op = build_graph()
    return {"inputs": {"z": z, "target": target}, "loss": loss, "train_op": train_op, "data": batches}


if __name__ == "__main__":
    z, target, loss, train_op = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches()):
            _, l = sess.run([train_op, loss], {z: batch["z"], target: batch["target"]})
            if i % 20 == 0:
                print(i, l)
