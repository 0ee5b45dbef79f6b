"""A torch MLP with momentum SGD and ``StepLR(step_size=1, gamma=0.5)`` stepped per epoch; its data is one epoch
of 2 batches (``len(data) == 2``): the rate halves every 2 steps (tf1_exp_decay.py's staircase decay).
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
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "scheduler": scheduler,
            "data": lambda: batches(2)}
