"""The PyTorch port of keras_cifar_augment.py, trained the way the torchvision examples train:
RandomCrop(8, padding=1) and RandomHorizontalFlip, ToTensor and Normalize(mean, std), a shuffling
DataLoader of batch 64, and a MultiStepLR that divides the rate by 10 at epoch 15, stepped once per
epoch. It seeds torch from ``--seed`` (default 1).

The step is the Keras program's (same model, SGD 0.01): `parity diff` agrees on it, and lists what
differs outside the step (augmentation, scaling, batch size, seeds, the schedule over epochs) in
"What this comparison does not cover".
"""
import argparse

import numpy as np
import torch
import torch.nn as nn

SIDE, CLASSES = 8, 10

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--seed", type=int, default=1)

model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * SIDE * SIDE, CLASSES))
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()


def train(loader):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


def main():
    from torchvision import datasets, transforms

    args = parser.parse_args()
    torch.manual_seed(args.seed)
    transform = transforms.Compose([
        transforms.Resize(SIDE),
        transforms.RandomCrop(SIDE, padding=1),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
    ])
    train_set = datasets.CIFAR10("data", train=True, download=True, transform=transform)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[15], gamma=0.1)
    for epoch in range(args.epochs):
        train(train_loader)
        scheduler.step()


def batches(n=100, size=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((size, SIDE, SIDE, 3)) - 0.5, "y": np.eye(CLASSES)[rng.integers(0, CLASSES, size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn, "data": batches}  # one-hot y: class probabilities


if __name__ == "__main__":
    main()
