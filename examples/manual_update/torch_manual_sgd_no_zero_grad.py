"""PLANTED MISTAKE (no zero_grad: .grad accumulates over the steps).

PyTorch port of tf1_clip_sgd.py with the update written by hand (no torch.optim): backward, clip the
gradients' global norm, then `p.data.add_(p.grad, alpha=-lr)` for every parameter.

parity compares what it can see of such a step: the loss, the gradients after backward() and the
parameters after the update (docs/own-model.md, "Several optimizers / a hand-written update").
"""
import numpy as np
import torch
import torch.nn as nn

N_IN, N_HIDDEN, N_OUT = 20, 32, 5
LR = 0.5


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(N_IN, N_HIDDEN)
        self.softmax = nn.Linear(N_HIDDEN, N_OUT)
        for p in self.parameters():
            nn.init.uniform_(p, -0.3, 0.3)

    def forward(self, x):
        return self.softmax(torch.tanh(self.hidden(x)))


model = Classifier()
criterion = nn.CrossEntropyLoss()


def train_step(batch, lr=LR):
    # planted: no model.zero_grad(): the gradients of every step add up
    loss = criterion(model(batch["x"]), batch["y"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    for p in model.parameters():
        p.data.add_(p.grad, alpha=-lr)
    return loss


def batches(n=100, batch_size=8, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, N_IN)), "y": rng.integers(0, N_OUT, batch_size)}


def parity_program():
    return {"model": model, "train_step": train_step, "data": lambda: batches()}


if __name__ == "__main__":
    for i, b in enumerate(batches(20)):
        loss = train_step({"x": torch.tensor(b["x"], dtype=torch.float32), "y": torch.tensor(b["y"])})
        print(i, float(loss))
