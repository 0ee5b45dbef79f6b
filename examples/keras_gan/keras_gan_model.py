"""A tiny GAN as the Keras guide "customizing what happens in fit()" writes one: a `keras.Model` holding
the discriminator and the generator, its own `compile(d_optimizer, g_optimizer, loss_fn)` and `train_step`
(D updated first, real -> 1 and fake -> 0, then G, each with one `tf.GradientTape` and its own optimizer's
`apply_gradients`), trained with `fit`. The noise is drawn inside the step with `tf.random.normal`, once for
D's update and once for G's, as the guide does.

For parity: the one model, its two optimizers and `"fit": True` (each step is one `train_on_batch`, what fit
runs per batch); each `apply_gradients` is one phase, and the noise draws are parity's own (the same normal
draws in the port, at the same sites). The port: torch_gan_model.py.
"""
import numpy as np
import tensorflow as tf
import keras

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1 = 2e-3, 0.5


class GAN(keras.Model):
    def __init__(self, discriminator, generator):
        super().__init__()
        self.discriminator, self.generator = discriminator, generator

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, data):
        real = data[0] if isinstance(data, tuple) else data
        batch_size = tf.shape(real)[0]
        z = tf.random.normal((batch_size, Z_DIM), dtype=real.dtype)
        with tf.GradientTape() as tape:
            real_out = self.discriminator(real, training=True)
            fake_out = self.discriminator(self.generator(z, training=True), training=True)
            d_loss = self.loss_fn(tf.ones_like(real_out), real_out) + self.loss_fn(tf.zeros_like(fake_out), fake_out)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z = tf.random.normal((batch_size, Z_DIM), dtype=real.dtype)
        with tf.GradientTape() as tape:
            fake_out = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = self.loss_fn(tf.ones_like(fake_out), fake_out)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}


def build():
    generator = keras.Sequential([keras.Input((Z_DIM,)), keras.layers.Dense(HIDDEN, activation="relu"),
                                  keras.layers.Dense(X_DIM)], name="generator")
    discriminator = keras.Sequential([keras.Input((X_DIM,)), keras.layers.Dense(HIDDEN), keras.layers.LeakyReLU(0.2),
                                      keras.layers.Dense(1)], name="discriminator")
    gan = GAN(discriminator, generator)
    gan.compile(d_optimizer=keras.optimizers.Adam(LR, beta_1=BETA1), g_optimizer=keras.optimizers.Adam(LR, beta_1=BETA1),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    return gan


def real_data(n=800, seed=0):
    return np.random.default_rng(seed).normal(1.0, 0.5, (n, X_DIM)).astype("float32")


def batches(n=100, batch_size=8):
    data = real_data()
    for i in range(n):
        yield {"x": data[(i * batch_size) % len(data):][:batch_size]}


def parity_program():
    gan = build()
    return {"model": gan, "optimizer": {"discriminator": gan.d_optimizer, "generator": gan.g_optimizer}, "fit": True,
            "data": batches}


if __name__ == "__main__":
    build().fit(real_data(), batch_size=8, epochs=2)
