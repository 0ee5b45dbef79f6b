"""The PyTorch port of tf1_gru.py: TF1's GRUCell written out (nn.GRU computes another function: its reset gate
multiplies the recurrent matmul's result, TF1's multiplies the state before it), looped over 5 steps, a Linear
head on the final state, cross-entropy, momentum SGD. The cell's two Linear layers are TF1's two kernels
transposed: ``gates`` (the reset gate r, then the update gate u) and ``candidate``.
"""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


class TF1GRUCell(nn.Module):
    """h' = u * h + (1 - u) * tanh([x, r * h] @ candidate), [r, u] = sigmoid([x, h] @ gates)."""

    def __init__(self, n_in, hidden):
        super().__init__()
        self.gates = nn.Linear(n_in + hidden, 2 * hidden)
        self.candidate = nn.Linear(n_in + hidden, hidden)

    def forward(self, x, h):
        r, u = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        c = torch.tanh(self.candidate(torch.cat([x, r * h], dim=1)))
        return u * h + (1 - u) * c


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = TF1GRUCell(FEATURES, HIDDEN)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], HIDDEN)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(h)


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Classifier()
    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            "loss": nn.CrossEntropyLoss(), "data": batches}


if __name__ == "__main__":
    p = parity_program()
    for i, batch in enumerate(batches()):
        p["optimizer"].zero_grad()
        loss = p["loss"](p["model"](torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]))
        loss.backward()
        p["optimizer"].step()
        if i % 20 == 0:
            print(i, float(loss))
