"""A tiny DCGAN in TF1 whose BatchNorm keeps moving statistics as TF 1.15's ``tf.contrib.layers.batch_norm(decay=0.9,
epsilon=1e-5, scale=True, updates_collections=None)`` keeps them (carpedm20's DCGAN-tensorflow, corpus pair 02):
fused (``tf.nn.fused_batch_norm``: its batch variance is Bessel-corrected) and each call's
``assign_moving_average`` run inside the call. The discriminator is called twice per step, on the real batch and
on G(z) with reuse=True: one ``sess.run(d_optim)`` updates its moving statistics twice, and TF1 leaves the order of
each update's read open (parity runs every read first: each update from the statistics the step read).
One training step is D once, then G twice with the same batch and noise.
"""
import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

Z_DIM, GF, DF, BATCH = 8, 8, 8, 8
LR, BETA1 = 2e-4, 0.5
INIT = tf.random_normal_initializer(stddev=0.02)


def conv2d(x, n_out, name):  # 5x5, stride 2, SAME, with a bias
    with tf.variable_scope(name):
        w = tf.get_variable("w", [5, 5, x.shape[-1], n_out], initializer=INIT)
        b = tf.get_variable("biases", [n_out], initializer=tf.zeros_initializer())
        return tf.nn.bias_add(tf.nn.conv2d(x, w, [1, 2, 2, 1], "SAME"), b)


def deconv2d(x, out_shape, name):  # 5x5, stride 2, SAME, with a bias
    with tf.variable_scope(name):
        w = tf.get_variable("w", [5, 5, out_shape[-1], x.shape[-1]], initializer=INIT)
        b = tf.get_variable("biases", [out_shape[-1]], initializer=tf.zeros_initializer())
        return tf.nn.bias_add(tf.nn.conv2d_transpose(x, w, out_shape, [1, 2, 2, 1], "SAME"), b)


def batch_norm(x, name, decay=0.9, epsilon=1e-5):  # contrib batch_norm, updates_collections=None
    from tensorflow.python.training import moving_averages

    with tf.variable_scope(name):
        n = x.shape[-1]
        gamma = tf.get_variable("gamma", [n], initializer=tf.ones_initializer())
        beta = tf.get_variable("beta", [n], initializer=tf.zeros_initializer())
        moving_mean = tf.get_variable("moving_mean", [n], initializer=tf.zeros_initializer(), trainable=False)
        moving_variance = tf.get_variable("moving_variance", [n], initializer=tf.ones_initializer(), trainable=False)
        y, mean, variance = tf.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon)
        with tf.control_dependencies([
                moving_averages.assign_moving_average(moving_mean, mean, decay, zero_debias=False),
                moving_averages.assign_moving_average(moving_variance, variance, decay, zero_debias=False)]):
            return tf.identity(y)


def linear(x, n_out, name):
    with tf.variable_scope(name):
        w = tf.get_variable("Matrix", [x.shape[-1], n_out], initializer=INIT)
        b = tf.get_variable("bias", [n_out], initializer=tf.zeros_initializer())
        return tf.matmul(x, w) + b


def lrelu(x):
    return tf.maximum(x, 0.2 * x)


def generator(z):
    with tf.variable_scope("generator"):
        h0 = tf.nn.relu(tf.reshape(linear(z, 4 * 4 * GF, "g_h0_lin"), [-1, 4, 4, GF]))
        return tf.nn.tanh(deconv2d(h0, [BATCH, 8, 8, 3], "g_h1"))


def discriminator(x, reuse=False):
    with tf.variable_scope("discriminator", reuse=reuse):
        h0 = lrelu(conv2d(x, DF, "d_h0_conv"))
        h1 = lrelu(batch_norm(conv2d(h0, 2 * DF, "d_h1_conv"), "d_bn1"))
        return linear(tf.reshape(h1, [-1, 2 * 2 * 2 * DF]), 1, "d_h2_lin")


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": np.tanh(rng.normal(size=(BATCH, 8, 8, 3))), "z": rng.uniform(-1, 1, (BATCH, Z_DIM))}


def parity_program():
    x = tf.placeholder(tf.float32, [BATCH, 8, 8, 3], name="x")
    z = tf.placeholder(tf.float32, [BATCH, Z_DIM], name="z")
    fake = generator(z)
    d_real, d_fake = discriminator(x), discriminator(fake, reuse=True)
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(bce(labels=tf.ones_like(d_real), logits=d_real)) + \
        tf.reduce_mean(bce(labels=tf.zeros_like(d_fake), logits=d_fake))
    g_loss = tf.reduce_mean(bce(labels=tf.ones_like(d_fake), logits=d_fake))
    d_opt, g_opt = tf.train.AdamOptimizer(LR, beta1=BETA1), tf.train.AdamOptimizer(LR, beta1=BETA1)
    d_optim = d_opt.minimize(d_loss, var_list=tf.trainable_variables("discriminator"))
    g_optim = g_opt.minimize(g_loss, var_list=tf.trainable_variables("generator"))
    return {"inputs": {"x": x, "z": z}, "train_op": [d_optim, g_optim, g_optim], "loss": [d_loss, g_loss, g_loss],
            "optimizer": [d_opt, g_opt, g_opt], "data": lambda: batches()}


if __name__ == "__main__":
    program = parity_program()
    x, z = program["inputs"]["x"], program["inputs"]["z"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches(20)):
            for op, loss in zip(program["train_op"], program["loss"]):
                _, value = sess.run([op, loss], {x: batch["x"], z: batch["z"]})
            print(i, value)
