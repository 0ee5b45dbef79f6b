"""A PyTorch port of tf1_mlp_rate_placeholder.py that leaves its dropout out: 20 -> 32 ReLU -> 5 logits;
cross-entropy on one-hot labels; SGD 0.1. parity must find the missing dropout at step 0 (the reference's
dropout acts in training, with a mask parity draws for it), never agree."""

import numpy as np
import torch
import torch.nn as nn

IN, HIDDEN, CLASSES = 20, 32, 5

model = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))
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
