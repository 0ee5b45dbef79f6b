"""A torch MLP decaying the weight matrices only, through parameter groups: ``weight_decay=WD``
on the kernels, 0 on the biases (Keras ``kernel_regularizer=l2(WD/2)``, keras_l2.py).
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
    kernels = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = torch.optim.SGD([{"params": kernels, "weight_decay": WD}, {"params": biases, "weight_decay": 0.0}], lr=LR,
                                momentum=0.9)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "data": batches}
