"""torch_conv_dropout.py with ``nn.Dropout2d``, which drops whole channels: the right port of
keras_conv_spatial_dropout.py (``SpatialDropout2D``), a wrong one of keras_conv_dropout.py, whose
``Dropout`` drops single elements."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIDE, FILTERS, CLASSES, RATE = 8, 8, 4, 0.3


class Net(nn.Module):
    def __init__(self, drop=nn.Dropout2d):
        super().__init__()
        self.conv = nn.Conv2d(3, FILTERS, 3, padding=1)
        self.drop = drop(RATE)
        self.dense = nn.Linear(SIDE * SIDE * FILTERS, CLASSES)

    def forward(self, x):
        x = self.drop(F.relu(self.conv(x)))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # Keras flattens (h, w, c)
        return self.dense(x)


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.CrossEntropyLoss()


def batches(n=50, batch_size=8, seed=7):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 3)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}
