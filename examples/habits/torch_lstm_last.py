"""Habit: the PyTorch port of tf1_rnn_alias_lstm.py: nn.LSTM(3, 8, batch_first), the last step's output into
nn.Linear(8, 4), cross-entropy on one-hot labels, SGD 0.1 (the LSTM's second bias frozen: TF's cell has one)."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class LastStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 8, batch_first=True)
        self.rnn.bias_hh_l0.requires_grad_(False)  # TF's cell has one bias: the second stays at parity's 0
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        return self.out(self.rnn(x)[0][:, -1])


def loss_fn(logits, y):
    return torch.mean(torch.sum(-y * F.log_softmax(logits, dim=1), dim=1))


def parity_program():
    model = LastStep()
    return {"model": model, "optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "loss": loss_fn}
