"""The PyTorch port of tf1_convnet.py: nn.Conv2d then ``F.relu`` and ``F.max_pool2d`` in ``forward``
(no module for them: the conv module's output is pre-ReLU), a channel-last flatten, nn.Linear; SGD 0.1."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SIDE, FILTERS, CLASSES = 6, 4, 3
RELU = F.relu


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, FILTERS, 3, padding=1)
        self.dense = nn.Linear((SIDE // 2) ** 2 * FILTERS, CLASSES)

    def forward(self, x):
        h = F.max_pool2d(RELU(self.conv(x)), 2)
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # TF's reshape of an NHWC map
        return self.dense(h)


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()


def batches(n=50, batch_size=4, seed=13):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 2)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}
