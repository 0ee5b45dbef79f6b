"""Habit: the plain PyTorch port of the habits' TF1 MLPs (784 -> 32 ReLU -> 10, SGD 0.1, one-hot labels)."""

import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)


def loss_fn(logits, y):
    return torch.mean(torch.sum(-y * F.log_softmax(logits, dim=1), dim=1))


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn}
