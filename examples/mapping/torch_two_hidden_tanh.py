"""tf1_two_hidden.py ported with a planted mistake: tanh after the first layer (TF: relu)."""

import numpy as np
import torch
import torch.nn as nn

ACTIVATION = torch.tanh  # planted: the TF program applies relu here


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = ACTIVATION(self.inp(x))
        h = torch.relu(self.fc1(h))
        h = torch.relu(self.fc2(h))
        return self.out(h)


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, 4)).astype(np.float32), "y": rng.integers(0, 3, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = MLP()
    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
            "loss": nn.CrossEntropyLoss(), "inputs": ["x"], "targets": ["y"], "data": batches}


if __name__ == "__main__":
    p = parity_program()
    for i, batch in enumerate(batches()):
        p["optimizer"].zero_grad()
        loss = p["loss"](p["model"](torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]))
        loss.backward()
        p["optimizer"].step()
        if i % 20 == 0:
            print(i, float(loss))
