"""Habit: the PyTorch port of ``tf1_sparse_input.py``: the same network on the dense features."""

import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def loss_fn(logits, y):
    return torch.mean(torch.sum(-y * F.log_softmax(logits, dim=1), dim=1))


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn}
