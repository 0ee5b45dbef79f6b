"""A tiny GAN in Keras, written as the classic Keras GAN scripts write it: the discriminator compiled on
its own, the generator trained through a combined model G -> D with the discriminator frozen, and each
step made of `train_on_batch` calls: D on the real batch (labels 1), D on the generated batch (labels 0),
then the combined model on the noise (labels 1). Three updates per step, each by its model's own Adam.

The discriminator is made trainable before its own updates and frozen before the combined model's (so
the script trains the same under tf_keras, which freezes at compile, and Keras 3, which reads the flag
when it runs). For parity: both models, no "optimizer" (the compiled models' own), and the step; each
`apply_gradients` a `train_on_batch` runs is one phase. The port: torch_gan_train_on_batch.py.
"""
import numpy as np
import keras

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1 = 2e-3, 0.5


def build():
    generator = keras.Sequential([keras.Input((Z_DIM,)), keras.layers.Dense(HIDDEN, activation="relu"),
                                  keras.layers.Dense(X_DIM)], name="generator")
    discriminator = keras.Sequential([keras.Input((X_DIM,)), keras.layers.Dense(HIDDEN), keras.layers.LeakyReLU(0.2),
                                      keras.layers.Dense(1)], name="discriminator")
    discriminator.compile(optimizer=keras.optimizers.Adam(LR, beta_1=BETA1),
                          loss=keras.losses.BinaryCrossentropy(from_logits=True))
    discriminator.trainable = False
    z = keras.Input((Z_DIM,))
    combined = keras.Model(z, discriminator(generator(z)), name="combined")
    combined.compile(optimizer=keras.optimizers.Adam(LR, beta_1=BETA1),
                     loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return generator, discriminator, combined


def make_train_step(generator, discriminator, combined):
    def train_step(batch):
        real, z = batch["x"], batch["z"]
        ones, zeros = np.ones((len(real), 1), "float32"), np.zeros((len(real), 1), "float32")
        fake = generator(z, training=False)
        discriminator.trainable = True
        d_loss_real = discriminator.train_on_batch(real, ones)
        d_loss_fake = discriminator.train_on_batch(fake, zeros)
        discriminator.trainable = False
        g_loss = combined.train_on_batch(z, ones)
        return 0.5 * (d_loss_real + d_loss_fake), g_loss
    return train_step


def batches(n=100, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(1.0, 0.5, (batch_size, X_DIM)).astype("float32"),
               "z": rng.normal(size=(batch_size, Z_DIM)).astype("float32")}


def parity_program():
    generator, discriminator, combined = build()
    return {"model": {"generator": generator, "discriminator": discriminator, "combined": combined},
            "train_step": make_train_step(generator, discriminator, combined), "inputs": ["x", "z"], "data": batches}


if __name__ == "__main__":
    program = parity_program()
    for i, batch in enumerate(batches(50)):
        d_loss, g_loss = program["train_step"](batch)
        print(i, float(d_loss), float(g_loss))
