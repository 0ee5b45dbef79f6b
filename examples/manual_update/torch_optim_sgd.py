"""The same classifier as torch_manual_sgd.py, trained the textbook way: torch.optim.SGD and
clip_grad_norm_. Against the hand-written update it agrees on every stage both report (the loss,
the gradients after backward(), the parameters after the step).
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
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
criterion = nn.CrossEntropyLoss()


def train_step(batch):
    optimizer.zero_grad()
    loss = criterion(model(batch["x"]), batch["y"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    optimizer.step()
    return loss


def batches(n=100, batch_size=8, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, N_IN)), "y": rng.integers(0, N_OUT, batch_size)}


def parity_program():
    return {"model": model, "optimizer": optimizer, "train_step": train_step, "data": lambda: batches()}
