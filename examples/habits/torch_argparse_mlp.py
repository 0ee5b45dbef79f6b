"""Habit: the PyTorch port of ``tf1_flags_mlp.py``, configured with argparse at the top of the file."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F

parser = argparse.ArgumentParser(description="MLP on MNIST")
parser.add_argument("--lr", type=float, default=0.1)
parser.add_argument("--hidden", type=int, default=32)
args = parser.parse_args()


class Net(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


model = Net(args.hidden)
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)


def loss_fn(logits, y):
    return torch.mean(torch.sum(-y * F.log_softmax(logits, dim=1), dim=1))


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn}
