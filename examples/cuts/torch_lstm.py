"""The PyTorch port of tf1_lstm.py: ``nn.LSTM(3, 8, batch_first=True)``, a linear layer on the final
h; cross-entropy; SGD 0.1."""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 8, 4


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.dense = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        _, (h, _) = self.lstm(x)
        return self.dense(h[-1])


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()


def batches(n=50, batch_size=4, seed=17):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, STEPS, FEATURES)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}
