"""A tiny GAN in Keras, written as the TensorFlow DCGAN tutorial writes it: a generator G(z) and a
discriminator D(x), two Adam optimizers, and a training step with one `tf.GradientTape` per network:
the discriminator is updated first (real -> 1, fake -> 0), then the generator (fool D), each with its
own optimizer's `apply_gradients`.

For parity, parity_program() returns both models and both optimizers (dicts) and the step; each
`apply_gradients` the step calls is one phase (docs/own-model.md, "Several optimizers / a
hand-written update"). The noise z comes with the batch, so the port sees the same noise.
The port: torch_gan.py.
"""
import numpy as np
import tensorflow as tf
import keras

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1 = 2e-3, 0.5

cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)


def make_generator():
    return keras.Sequential([keras.Input((Z_DIM,)), keras.layers.Dense(HIDDEN, activation="relu"),
                             keras.layers.Dense(X_DIM)], name="generator")


def make_discriminator():
    return keras.Sequential([keras.Input((X_DIM,)), keras.layers.Dense(HIDDEN), keras.layers.LeakyReLU(0.2),
                             keras.layers.Dense(1)], name="discriminator")


def make_train_step(generator, discriminator, g_opt, d_opt):
    def train_step(batch):
        real, z = batch["x"], batch["z"]
        # discriminator: real -> 1, fake -> 0
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_out = discriminator(real, training=True)
            fake_out = discriminator(fake, training=True)
            d_loss = cross_entropy(tf.ones_like(real_out), real_out) + cross_entropy(tf.zeros_like(fake_out), fake_out)
        grads = tape.gradient(d_loss, discriminator.trainable_variables)
        d_opt.apply_gradients(zip(grads, discriminator.trainable_variables))
        # generator: fool the discriminator
        with tf.GradientTape() as tape:
            fake_out = discriminator(generator(z, training=True), training=True)
            g_loss = cross_entropy(tf.ones_like(fake_out), fake_out)
        grads = tape.gradient(g_loss, generator.trainable_variables)
        g_opt.apply_gradients(zip(grads, generator.trainable_variables))
        return d_loss, g_loss
    return train_step


def batches(n=100, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(1.0, 0.5, (batch_size, X_DIM)).astype("float32"),
               "z": rng.normal(size=(batch_size, Z_DIM)).astype("float32")}


def parity_program():
    generator, discriminator = make_generator(), make_discriminator()
    g_opt = keras.optimizers.Adam(LR, beta_1=BETA1)
    d_opt = keras.optimizers.Adam(LR, beta_1=BETA1)
    return {"model": {"generator": generator, "discriminator": discriminator},
            "optimizer": {"discriminator": d_opt, "generator": g_opt},
            "train_step": make_train_step(generator, discriminator, g_opt, d_opt),
            "inputs": ["x", "z"], "data": batches}


if __name__ == "__main__":
    program = parity_program()
    for i, batch in enumerate(batches(50)):
        d_loss, g_loss = program["train_step"](batch)
        print(i, float(d_loss), float(g_loss))
