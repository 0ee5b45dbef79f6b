"""A tiny DCGAN in TF1 (graph + Session), written as carpedm20's DCGAN-tensorflow writes its layers:
5x5 stride-2 SAME convolutions with biases, a transposed convolution for the generator, weights drawn
N(0, 0.02), BatchNorm on batch statistics, leaky ReLU as max(x, 0.2x), TF1's Adam(2e-4, beta1=0.5);
one training step is D once, then G twice with the same batch and noise.

The discriminator's second convolution has a bias right before BatchNorm: its gradient is zero in exact
arithmetic (BatchNorm subtracts the batch mean) and both frameworks compute rounding noise there, which
Adam divides by its epsilon (docs/tolerance.md, "Values that are zero or cancel"). The program builds G
before D; its port (torch_dcgan.py) calls D on the real batch first: the layer outputs pair within each
network (docs/own-model.md).
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


def batch_norm(x, name):  # training mode: the batch's statistics
    with tf.variable_scope(name):
        gamma = tf.get_variable("gamma", [x.shape[-1]], initializer=tf.ones_initializer())
        beta = tf.get_variable("beta", [x.shape[-1]], initializer=tf.zeros_initializer())
        mean, var = tf.nn.moments(x, [0, 1, 2])
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-5)


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
        h1 = lrelu(batch_norm(conv2d(h0, 2 * DF, "d_h1_conv"), "d_bn1"))  # a conv bias right before BatchNorm
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
