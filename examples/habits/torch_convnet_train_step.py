"""Habit: the PyTorch port of ``tf1_flat_convnet.py`` with its own training step, which reshapes the flat
images to ``[N, 1, 28, 28]`` and turns the one-hot labels into class indices itself."""

import torch
import torch.nn as nn
import torch.nn.functional as F

model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def train_step(batch):
    images = batch["x"].view(-1, 28, 28, 1).permute(0, 3, 1, 2)
    labels = batch["y"].argmax(dim=1)
    optimizer.zero_grad()
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": F.cross_entropy, "train_step": train_step}
