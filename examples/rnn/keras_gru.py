"""A Keras sequence classifier: GRU(4) over 5 steps, a Dense head, sparse categorical cross-entropy, momentum SGD.
Keras's GRU (reset_after=True, the default since Keras 2.3: torch's maths) holds kernel [in, 3H] and
recurrent_kernel [H, 3H], gates z, r, h, and a bias [2, 3H]: the input bias and the recurrent bias. The port: torch_gru.py.
"""

import numpy as np
import tensorflow as tf

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


def build_model():
    model = tf.keras.Sequential([tf.keras.Input((STEPS, FEATURES)), tf.keras.layers.GRU(HIDDEN),
                                 tf.keras.layers.Dense(CLASSES)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer, "loss": model.loss, "inputs": ["x"], "targets": ["y"],
            "data": batches}


if __name__ == "__main__":
    model = build_model()
    for i, batch in enumerate(batches()):
        loss = model.train_on_batch(batch["x"], batch["y"])
        if i % 20 == 0:
            print(i, loss)
