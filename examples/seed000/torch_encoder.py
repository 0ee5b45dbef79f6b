"""Seed 000 in PyTorch: the 1-16-16-1 "identity encoder" whose weights stop moving.

A ReLU network is trained to output half its input at element [0, 0] (estimate = 2 * out[0, 0]),
one random input in [-1, 1) per step, plain gradient descent (lr 1e-3) with every gradient
clipped to [-4.5, 4.5]. All weights and biases start from N(0, 1e-3): with the middle layer the
gradients vanish and the first layer barely moves.
"""
import numpy as np
import torch
import torch.nn as nn

DEPTH_1 = 16
OUT_DEPTH = 1


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer0 = nn.Linear(1, DEPTH_1)
        self.layer1 = nn.Linear(DEPTH_1, DEPTH_1)
        self.layer2 = nn.Linear(DEPTH_1, OUT_DEPTH)
        for layer in (self.layer0, self.layer1, self.layer2):
            nn.init.normal_(layer.weight, 0.0, 1e-3)
            nn.init.normal_(layer.bias, 0.0, 1e-3)

    def forward(self, x):
        h = torch.relu(self.layer0(x))
        h = torch.relu(self.layer1(h))
        return self.layer2(h)


model = Encoder()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)


def train_step(batch):
    x = batch["x"]
    optimizer.zero_grad()
    estimate0 = 2.0 * model(x)[0, 0]
    distance = (x[0, 0] - estimate0) ** 2
    distance.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 4.5)
    optimizer.step()
    return distance


def batches(n=10000, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": 2.0 * rng.random((1, 1)) - 1.0}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "train_step": train_step, "data": batches}


if __name__ == "__main__":
    for i, batch in enumerate(batches()):
        loss = train_step({"x": torch.from_numpy(batch["x"]).float()})
        if i % 1000 == 0:
            print(i, float(loss), model.layer0.weight.detach().numpy().ravel()[:4])
