"""PLANTED MISTAKE (model left in eval(): BatchNorm uses its running statistics, dropout is off).

Seed 003 in PyTorch: the BatchNorm + dropout convnet the Keras question trains with fit().

Conv 3x3x8 (SAME, no bias) -> BatchNorm -> ReLU -> max-pool 2 -> flatten -> dropout (keep 0.75)
-> dense 10; categorical cross-entropy on one-hot labels; SGD(lr 0.1, momentum 0.9, nesterov).
Keras BatchNormalization(momentum=0.99, epsilon=1e-3) is torch's BatchNorm2d(momentum=0.01, eps=1e-3).
The model must be in train() mode while training (the seed's bug is the inference phase).
"""
import numpy as np
import torch
import torch.nn as nn

SIDE, FILTERS, CLASSES, KEEP = 32, 8, 10, 0.75

model = nn.Sequential(
    nn.Conv2d(3, FILTERS, 3, padding=1, bias=False),
    nn.BatchNorm2d(FILTERS, eps=1e-3, momentum=0.01),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Dropout(1.0 - KEEP),
    nn.Linear((SIDE // 2) * (SIDE // 2) * FILTERS, CLASSES),
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
loss_fn = nn.CrossEntropyLoss()
model.eval()  # the mistake: left in inference mode (e.g. after an evaluation pass)


def batches(n=100, batch_size=16, seed=3):
    """CIFAR-shaped stand-in data: images [N, 32, 32, 3] (channel-last, as TF feeds them), one-hot labels."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, SIDE, SIDE, 3)), "y": np.eye(CLASSES)[rng.integers(0, CLASSES, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn, "data": batches}


if __name__ == "__main__":
    for i, b in enumerate(batches()):
        x = torch.from_numpy(b["x"]).float().permute(0, 3, 1, 2)
        optimizer.zero_grad()
        loss = loss_fn(model(x), torch.from_numpy(b["y"]).float())
        loss.backward()
        optimizer.step()
        print(i, float(loss))
