"""A Keras encoder-decoder (a functional model of two inputs): an encoder LSTM(return_state=True) reads the source
sequence, its final state [h, c] starts a decoder LSTM(return_sequences=True) that reads the target sequence
(teacher forcing), a Dense head on every decoder step, sparse categorical cross-entropy on one label per step,
momentum SGD. The port: torch_seq2seq.py with the head kept per step (tests/test_mapping_recurrent_forms.py).
"""

import numpy as np
import tensorflow as tf

SRC, TGT, FEATURES, HIDDEN, CLASSES = 6, 4, 3, 5, 3


def build_model():
    source = tf.keras.Input((SRC, FEATURES), name="source")
    target = tf.keras.Input((TGT, FEATURES), name="target")
    _, h, c = tf.keras.layers.LSTM(HIDDEN, return_state=True, name="encoder")(source)
    outputs = tf.keras.layers.LSTM(HIDDEN, return_sequences=True, name="decoder")(target, initial_state=[h, c])
    logits = tf.keras.layers.Dense(CLASSES, name="head")(outputs)
    model = tf.keras.Model([source, target], logits)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"source": rng.normal(size=(8, SRC, FEATURES)).astype(np.float32),
               "target": rng.normal(size=(8, TGT, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=(8, TGT))}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = build_model()
    return {"model": model, "optimizer": model.optimizer, "loss": model.loss, "inputs": ["source", "target"],
            "targets": ["y"], "data": batches}


if __name__ == "__main__":
    model = build_model()
    for i, batch in enumerate(batches()):
        loss = model.train_on_batch([batch["source"], batch["target"]], batch["y"])
        if i % 20 == 0:
            print(i, loss)
