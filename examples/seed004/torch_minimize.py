"""Seed 004 in PyTorch: which variables a step trains.

y_hat = w1 * x + w2 * x + w3 * x with w3 a constant 4 (a buffer: never trained), w1 = w2 = 4 at
the start; x = 1, y = 1; squared error; plain gradient descent (lr 0.25) on w1 and w2 only, as
TF1's minimize() trains the trainable variables on the loss's path.
"""
import numpy as np
import torch
import torch.nn as nn


class Sum3(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(4.0))
        self.w2 = nn.Parameter(torch.tensor(4.0))
        self.register_buffer("w3", torch.tensor(4.0))

    def forward(self, x):
        return self.w1 * x + self.w2 * x + self.w3 * x


model = Sum3()
optimizer = torch.optim.SGD(model.parameters(), lr=0.25)


def squared_error(y_hat, y):
    return ((y - y_hat) ** 2).sum()


def batches(n=100):
    for _ in range(n):
        yield {"x": np.array([1.0]), "y": np.array([1.0])}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": squared_error, "data": batches}


if __name__ == "__main__":
    for i, b in zip(range(20), batches()):
        optimizer.zero_grad()
        loss = squared_error(model(torch.tensor(b["x"])), torch.tensor(b["y"]))
        loss.backward()
        optimizer.step()
        print(i, float(loss), float(model.w1), float(model.w2))
