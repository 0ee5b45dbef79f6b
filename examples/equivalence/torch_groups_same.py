"""``Adam(weight_decay=WD)`` written with two parameter groups holding the same settings: the same
training as one group (torch_adam_wd.py).
"""

import numpy as np
import torch
from torch import nn

WD, LR, EPS = 0.01, 0.01, 1e-16


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def batches(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, 4)), "y": np.eye(3)[rng.integers(0, 3, 8)]} for _ in range(n)]


def parity_program():
    model = MLP()
    optimizer = torch.optim.Adam([{"params": model.hidden.parameters()}, {"params": model.out.parameters()}],
                                 lr=LR, weight_decay=WD, eps=EPS)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "data": batches}
