"""A torch autoencoder (4-8-4) trained on its mean squared reconstruction error by the program's own
step: the same training as keras_string_loss_add_loss.py's ``add_loss``."""

import torch
from torch import nn
from torch.nn import functional as F

LR = 0.01


class AE(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


def parity_program():
    model = AE()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)

    def train_step(batch):
        optimizer.zero_grad()
        loss = F.mse_loss(model(batch["x"]), batch["x"])
        loss.backward()
        optimizer.step()
        return loss

    return {"model": model, "optimizer": optimizer, "train_step": train_step, "targets": []}
