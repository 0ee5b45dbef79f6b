"""A tiny GAN in TF1 (graph + Session): an MLP generator G(z) and an MLP discriminator D(x), the
discriminator trained once and the generator twice per step, as the classic TF1 DCGAN script does
(`sess.run(d_optim)`, then `sess.run(g_optim)` twice, all with the same batch and noise).

For parity the step's three train ops are returned in the order they run, each with its loss; the
noise z is a placeholder, so it is a batch key (drawn N(0, 1) by parity, or given by "data").
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
    fake = generator(z)
    d_real = discriminator(x)
    d_fake = discriminator(fake, reuse=True)
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(bce(labels=tf.ones_like(d_real), logits=d_real)) + \
        tf.reduce_mean(bce(labels=tf.zeros_like(d_fake), logits=d_fake))
    g_loss = tf.reduce_mean(bce(labels=tf.ones_like(d_fake), logits=d_fake))
    d_vars = tf.trainable_variables("discriminator")
    g_vars = tf.trainable_variables("generator")
    d_opt = tf.train.AdamOptimizer(LR, beta1=BETA1)
    g_opt = tf.train.AdamOptimizer(LR, beta1=BETA1)
    d_optim = d_opt.minimize(d_loss, var_list=d_vars)
    g_optim = g_opt.minimize(g_loss, var_list=g_vars)
    return {"inputs": {"x": x, "z": z},
            "train_op": [d_optim, g_optim, g_optim], "loss": [d_loss, g_loss, g_loss],
            "optimizer": [d_opt, g_opt, g_opt], "data": lambda: batches()}


if __name__ == "__main__":
    program = parity_program()
    x, z = program["inputs"]["x"], program["inputs"]["z"]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for i, batch in enumerate(batches(50)):
            feed = {x: batch["x"], z: batch["z"]}
            for op, loss in zip(program["train_op"], program["loss"]):
                _, value = sess.run([op, loss], feed)
            print(i, value)
