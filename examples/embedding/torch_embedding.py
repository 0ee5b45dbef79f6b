"""The PyTorch port of tf1_embedding.py: nn.Embedding, the mean over the tokens, a Linear head,
cross-entropy, Adagrad (a dense gradient: the rows not looked up get 0 and do not move, as in TF's sparse
update; TF1 starts the accumulator at 0.1 and adds no epsilon)."""

import numpy as np
import torch
import torch.nn as nn

VOCAB, DIM, TOKENS, CLASSES = 20, 5, 6, 3


class BagOfWords(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, ids):
        return self.head(self.embedding(ids).mean(dim=1))


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.integers(0, VOCAB, size=(8, TOKENS)), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = BagOfWords()
    return {"model": model, "optimizer": torch.optim.Adagrad(model.parameters(), lr=0.5, initial_accumulator_value=0.1, eps=0.0), "loss": nn.CrossEntropyLoss(),
            "inputs": ["x"], "targets": ["y"], "data": batches}


if __name__ == "__main__":
    p = parity_program()
    for i, batch in enumerate(batches()):
        p["optimizer"].zero_grad()
        loss = p["loss"](p["model"](torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]))
        loss.backward()
        p["optimizer"].step()
        if i % 20 == 0:
            print(i, float(loss))
