"""A torch MLP ending in ``log_softmax`` trained with ``NLLLoss`` on class indices (momentum SGD): the
same loss as Keras ``softmax`` + categorical cross-entropy (keras_softmax_cce.py).
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
    nll = nn.NLLLoss()

    def loss(out, y):
        return nll(torch.log_softmax(out, dim=1), y.argmax(dim=1))

    return {"model": model, "optimizer": optimizer, "loss": loss, "data": batches}
