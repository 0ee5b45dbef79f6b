"""The PyTorch port of tf1_mlp_rate_placeholder.py: 20 -> 32 ReLU -> F.dropout(p=0.5) -> 5 logits;
cross-entropy on one-hot labels; SGD 0.1."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IN, HIDDEN, CLASSES, DROP = 20, 32, 5, 0.5


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IN, HIDDEN)
        self.fc2 = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        h = F.dropout(F.relu(self.fc1(x)), DROP, training=self.training)
        return self.fc2(h)


model = MLP()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()


def batches(n=50, batch_size=8, seed=5):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, IN)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}


if __name__ == "__main__":
    for b in batches():
        optimizer.zero_grad()
        loss = criterion(model(torch.from_numpy(b["x"]).float()), torch.from_numpy(b["y"]).float())
        loss.backward()
        optimizer.step()
        print(float(loss))
