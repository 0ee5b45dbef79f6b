"""The discriminator's step of tf1_gan.py alone: one train op, `d_opt.minimize(d_loss, var_list=d_vars)`.
The generator runs in the step (D sees G(z)) but no train op updates it: its variables are the model's
state, reported after each step (unchanged) as the torch port's parameters no optimizer holds are.
"""
import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1 = 2e-3, 0.5


def dense(x, n_out, name, activation=None):
    with tf.variable_scope(name):
        w = tf.get_variable("kernel", [x.shape[-1], n_out], initializer=tf.random_normal_initializer(stddev=0.3))
        b = tf.get_variable("bias", [n_out], initializer=tf.zeros_initializer())
        y = tf.matmul(x, w) + b
        return activation(y) if activation else y


def generator(z):
    with tf.variable_scope("generator"):
        return dense(dense(z, HIDDEN, "h1", tf.nn.relu), X_DIM, "out")


def discriminator(x, reuse=False):
    with tf.variable_scope("discriminator", reuse=reuse):
        return dense(dense(x, HIDDEN, "h1", tf.nn.leaky_relu), 1, "out")


def batches(n=100, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(1.0, 0.5, (batch_size, X_DIM)), "z": rng.normal(size=(batch_size, Z_DIM))}


def parity_program():
    x = tf.placeholder(tf.float32, [None, X_DIM], name="x")
    z = tf.placeholder(tf.float32, [None, Z_DIM], name="z")
    d_real = discriminator(x)
    d_fake = discriminator(generator(z), reuse=True)
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(bce(labels=tf.ones_like(d_real), logits=d_real)) + \
        tf.reduce_mean(bce(labels=tf.zeros_like(d_fake), logits=d_fake))
    d_opt = tf.train.AdamOptimizer(LR, beta1=BETA1)
    d_optim = d_opt.minimize(d_loss, var_list=tf.trainable_variables("discriminator"))
    return {"inputs": {"x": x, "z": z}, "train_op": d_optim, "loss": d_loss, "optimizer": d_opt,
            "data": lambda: batches()}
