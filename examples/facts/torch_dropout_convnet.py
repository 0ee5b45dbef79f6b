"""A small torch convnet with one element-wise dropout: conv 3x3x4 (padding 1) -> ReLU -> dropout 0.25 ->
flatten -> linear 3; SGD(0.1); cross-entropy. The reference of the dropout-kind and padding mistakes in
examples/mistakes/ (torch_dropout2d.py, torch_conv_no_padding.py)."""
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
SIDE, CLASSES = 6, 3

model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.25), nn.Flatten(),
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
