"""PLANTED MISTAKES (the conv pads by reflection instead of zeros, and Dropout2d for an element dropout) in
examples/facts/torch_dropout_convnet.py: the padding shows first, at the conv, before any dropout acts, so
the dropout difference (a fact) must not be given as its name."""
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
SIDE, CLASSES = 6, 3

model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), nn.ReLU(), nn.Dropout2d(0.25), nn.Flatten(),
                      nn.Linear(4 * SIDE * SIDE, CLASSES))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
loss_fn = nn.CrossEntropyLoss()


def batches(n=100, batch_size=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 2)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn, "data": batches}
