"""A tiny TF1 VAE: ``eps = tf.random_normal(tf.shape(mu))`` and ``z = mu + tf.exp(0.5 * logvar) * eps``
(the reparameterisation as TF1 tutorials write it); the same network as keras_vae.py.

12 -> 16 ReLU (enc) -> mu, logvar (3 each) -> z -> 12 (dec); mean squared reconstruction error plus
the KL term (mean over the batch); plain gradient descent 0.05.
"""

import numpy as np
import tensorflow.compat.v1 as tf

IN, HIDDEN, LATENT = 12, 16, 3


def dense(x, n_in, n_out, name):
    with tf.variable_scope(name):
        w = tf.get_variable("kernel", [n_in, n_out], initializer=tf.glorot_uniform_initializer())
        b = tf.get_variable("bias", [n_out], initializer=tf.zeros_initializer())
        return tf.matmul(x, w) + b


def build_graph():
    x = tf.placeholder(tf.float32, [None, IN], name="x")
    h = tf.nn.relu(dense(x, IN, HIDDEN, "enc"))
    mu = dense(h, HIDDEN, LATENT, "mu")
    logvar = dense(h, HIDDEN, LATENT, "logvar")
    eps = tf.random_normal(tf.shape(mu))
    z = mu + tf.exp(0.5 * logvar) * eps
    recon = dense(z, LATENT, IN, "dec")
    kl = -0.5 * tf.reduce_mean(tf.reduce_sum(1 + logvar - tf.square(mu) - tf.exp(logvar), axis=1))
    loss = tf.reduce_mean(tf.square(recon - x)) + kl
    train = tf.train.GradientDescentOptimizer(0.05).minimize(loss)
    return x, loss, train


def batches(n=50, batch_size=8, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=(batch_size, IN))
        yield {"x": x, "y": x}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    x, loss, train = build_graph()
    return {"inputs": {"x": x}, "loss": loss, "train_op": train, "data": batches}


if __name__ == "__main__":
    x, loss, train = build_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for b in batches(10):
            print(sess.run([train, loss], {x: b["x"]})[1])
