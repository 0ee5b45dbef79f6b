"""The leaky-ReLU MLP of ``tf1_leaky_mlp.py`` in PyTorch: ``F.leaky_relu(x, 0.2)`` between two
``nn.Linear`` layers, cross-entropy, SGD."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

N_IN, N_HIDDEN, N_OUT = 20, 32, 10
LEARNING_RATE = 0.1
ALPHA = 0.2


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(N_IN, N_HIDDEN)
        self.output = nn.Linear(N_HIDDEN, N_OUT)

    def forward(self, x):
        return self.output(F.leaky_relu(self.hidden(x), ALPHA))


def batches(n=1000, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.standard_normal((batch_size, N_IN)), "y": rng.integers(0, N_OUT, batch_size)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "data": batches}


if __name__ == "__main__":
    model, criterion = MLP(), nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    for step, batch in enumerate(batches(100)):
        optimizer.zero_grad()
        loss = criterion(model(torch.from_numpy(batch["x"]).float()), torch.from_numpy(batch["y"]))
        loss.backward()
        optimizer.step()
        if step % 10 == 0:
            print(step, float(loss))
