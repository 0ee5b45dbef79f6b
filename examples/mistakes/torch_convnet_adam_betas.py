"""PLANTED MISTAKE (Adam betas (0.9, 0.99): the TF1 original keeps beta2 0.999) in the seed 001 torch port.

Seed 001 in PyTorch: the MNIST convnet whose first layer "does not change".

conv 5x5x32 (SAME) + ReLU, max-pool 2, conv 5x5x64 + ReLU, max-pool 2, fc 7*7*64 -> 1024 + ReLU,
dropout (keep_prob 0.75 in the TF original = p 0.25 here), fc 1024 -> 10; every weight and bias
from N(0, 1); softmax cross-entropy on one-hot labels; Adam, lr 1e-3.

Adam: TF1 adds epsilon to sqrt(v) before bias correction ("epsilon hat"), torch after it. To train
exactly like the TF1 original, this port rescales eps every step: eps_t = eps_hat / sqrt(1 - beta2^t).
(examples/mistakes/torch_convnet_adam_eps.py is the same port without that line.)
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LEARNING_RATE = 1e-3
EPSILON = 1e-8
BETAS = (0.9, 0.99)  # the mistake: TF1 AdamOptimizer has beta2 0.999


class ConvNet(nn.Module):
    def __init__(self, n_classes=10, keep_prob=0.75):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(7 * 7 * 64, 1024)
        self.dropout = nn.Dropout(1.0 - keep_prob)
        self.out = nn.Linear(1024, n_classes)
        for p in self.parameters():
            nn.init.normal_(p, 0.0, 1.0)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = self.dropout(F.relu(self.fc1(x)))
        return self.out(x)


model = ConvNet()
optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPSILON)
criterion = nn.CrossEntropyLoss()
step = 0


def train_step(batch):
    global step
    step += 1
    for group in optimizer.param_groups:  # TF1's epsilon-hat
        group["eps"] = EPSILON / math.sqrt(1.0 - BETAS[1] ** step)
    optimizer.zero_grad()
    loss = criterion(model(batch["x"]), batch["y"])
    loss.backward()
    optimizer.step()
    return loss


def batches(n=100, batch_size=16, seed=1):
    """MNIST-shaped stand-in data (flat 784 pixels in [0, 1), one-hot labels)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((batch_size, 784)), "y": np.eye(10)[rng.integers(0, 10, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "train_step": train_step, "data": batches}


if __name__ == "__main__":
    model.train()
    for i, b in enumerate(batches()):
        loss = train_step({k: torch.from_numpy(v).float() for k, v in b.items()})
        print(i, float(loss))
