"""Habit: the PyTorch port of tf1_lr_variable_embedding.py: nn.Embedding(6, 3), the mean over the tokens,
nn.Linear(3, 10), cross-entropy, SGD at 0.5 (the rate the TF1 program feeds its lr variable)."""

import torch
import torch.nn as nn


class BagOfWords(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(6, 3)
        self.head = nn.Linear(3, 10)

    def forward(self, ids):
        return self.head(self.embedding(ids).mean(dim=1))


def parity_program():
    model = BagOfWords()
    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.5), "loss": nn.CrossEntropyLoss(),
            "inputs": ["x"], "targets": ["y"]}
