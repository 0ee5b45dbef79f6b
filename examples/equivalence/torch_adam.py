"""A torch MLP trained with plain Adam (no decay, no schedule).
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
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "data": batches}
