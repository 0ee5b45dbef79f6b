"""Habit: the PyTorch port of ``keras_convnet.py`` as a PyTorch author writes it: the model takes
``[N, 1, 28, 28]`` images and the loss takes class indices (``F.nll_loss`` of ``log_softmax``), while the
reference feeds ``[N, 28, 28, 1]`` images and one-hot labels."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x.permute(0, 2, 3, 1).flatten(1)  # Keras' Flatten reads (h, w, c)
        return self.fc(x)


model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def criterion(logits, target):
    return F.nll_loss(F.log_softmax(logits, dim=1), target)


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion}
