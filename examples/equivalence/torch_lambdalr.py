"""A torch MLP trained with plain ``SGD`` and ``LambdaLR(1 / (1 + DECAY * step))``, stepped after
every training step (LambdaLR is written for either unit: parity steps it per step unless the program
says ``"scheduler_unit": "epoch"``): Keras' legacy ``decay`` (keras_legacy_decay.py)."""

import numpy as np
import torch
from torch import nn

LR, DECAY = 0.01, 0.5  # 0.01 is not a float32 number: a float64 run must step with 0.01, not 0.0099999998


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
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1.0 + DECAY * step))
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "scheduler": scheduler,
            "data": batches}
