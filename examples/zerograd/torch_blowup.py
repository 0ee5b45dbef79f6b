"""The PyTorch port of tf1_blowup.py: y = x w + b, mean squared error, SGD with lr 1e3 (diverges to NaN)."""

import numpy as np
import torch
import torch.nn as nn

LR = 1e3


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.full((3, 1), 0.1))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x @ self.w + self.b


model = Linear()
optimizer = torch.optim.SGD(model.parameters(), lr=LR)
criterion = nn.MSELoss()


def batches(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=(4, 3))
        yield {"x": x, "y": x @ np.array([[1.0], [-2.0], [0.5]])}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}


if __name__ == "__main__":
    for i, b in zip(range(20), batches()):
        optimizer.zero_grad()
        loss = criterion(model(torch.from_numpy(b["x"]).float()), torch.from_numpy(b["y"]).float())
        loss.backward()
        optimizer.step()
        print(i, float(loss))
