"""A Keras sequence tagger: Bidirectional(LSTM(4, return_sequences=True)) over 5 steps (merge_mode "concat": the
forward and the backward sequence outputs concatenated on the last axis, the backward one in input time order),
a Dense head on every step, sparse categorical cross-entropy on one label per step, momentum SGD. The port:
torch_bilstm_steps.py (nn.LSTM(bidirectional=True), whose sequence output is that concatenation already).
"""

import numpy as np
import tensorflow as tf

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 3


def build_model():
    model = tf.keras.Sequential([tf.keras.Input((STEPS, FEATURES)),
                                 tf.keras.layers.Bidirectional(tf.keras.layers.LSTM(HIDDEN, return_sequences=True)),
                                 tf.keras.layers.Dense(CLASSES)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=(8, STEPS))}


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
