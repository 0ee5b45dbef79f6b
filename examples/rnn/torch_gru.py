"""The PyTorch port of keras_gru.py: nn.GRU over 5 steps, a Linear head on the last output, cross-entropy,
momentum SGD.

nn.GRU holds weight_ih [3H, in] and weight_hh [3H, H], gates r, z, n, and two biases, bias_ih and
bias_hh: the two rows of Keras's GRU bias (reset_after=True puts the recurrent bias inside r * (.),
as torch does), so both are trained, like Keras's.
"""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(FEATURES, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss(), "data": batches}


if __name__ == "__main__":
    model = Classifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for i, batch in enumerate(batches()):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]))
        loss.backward()
        optimizer.step()
        if i % 20 == 0:
            print(i, loss.item())
