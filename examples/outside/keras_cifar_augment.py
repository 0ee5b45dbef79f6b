"""A small Keras (tf_keras) convnet for 8x8 colour images, trained the way the Keras CIFAR-10 examples
train: pixels scaled by /255 with the per-pixel training mean subtracted, an ImageDataGenerator that
shifts and flips the images, and a LearningRateScheduler that divides the rate by 10 after epoch 15.
It seeds numpy and TensorFlow.

Everything in the ``__main__`` block happens outside a training step: `parity diff` against
torch_cifar_augment.py compares the steps and lists these in "What this comparison does not cover"
(docs/own-model.md).
"""
import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras.callbacks import LearningRateScheduler
from tf_keras.preprocessing.image import ImageDataGenerator

SIDE, CLASSES = 8, 10
batch_size = 32
epochs = 30
data_augmentation = True

np.random.seed(7)
tf.random.set_seed(7)

model = keras.Sequential([
    keras.layers.Input((SIDE, SIDE, 3)),
    keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv"),
    keras.layers.Flatten(name="flatten"),
    keras.layers.Dense(CLASSES, name="dense"),
])
optimizer = keras.optimizers.SGD(learning_rate=0.01)
model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(from_logits=True))


def lr_schedule(epoch):
    return 0.01 if epoch < 15 else 0.001


def batches(n=100, size=4, seed=0):
    """Images as the training script prepares them (about [-0.5, 0.5] after the mean), one-hot labels."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((size, SIDE, SIDE, 3)) - 0.5, "y": np.eye(CLASSES)[rng.integers(0, CLASSES, size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": keras.losses.CategoricalCrossentropy(from_logits=True),
            "data": batches}


if __name__ == "__main__":
    (x_train, y_train), _ = keras.datasets.cifar10.load_data()
    x_train = x_train[:, ::4, ::4].astype("float32") / 255
    x_train_mean = np.mean(x_train, axis=0)
    x_train -= x_train_mean
    y_train = keras.utils.to_categorical(y_train, CLASSES)
    callbacks = [LearningRateScheduler(lr_schedule)]
    if not data_augmentation:
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, callbacks=callbacks)
    else:
        datagen = ImageDataGenerator(width_shift_range=0.125, height_shift_range=0.125, horizontal_flip=True,
                                     fill_mode="nearest")
        model.fit(datagen.flow(x_train, y_train, batch_size=batch_size), epochs=epochs, callbacks=callbacks)
