"""A torch MLP whose loss function adds ``WD * sum(||w||^2) / 2`` by hand (momentum SGD): the same
training as tf1_l2_momentum.py; the regularisation cannot be told apart from the data loss.
"""

import numpy as np
import torch
from torch import nn

WD, LR = 0.01, 0.01


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    ce = nn.CrossEntropyLoss()

    def loss(out, y):
        return ce(out, y) + WD * sum((p * p).sum() for p in model.parameters()) / 2

    return {"model": model, "optimizer": optimizer, "loss": loss, "data": batches}
