"""PLANTED MISTAKE (the loss summed over the batch instead of averaged: nn.CrossEntropyLoss(reduction='sum')) in the seed 002 torch port.

Seed 002 in PyTorch: MLP 784-300-100-10 with max-norm regularisation.

He-initialised (variance scaling, fan-in) Dense layers with ReLU, softmax cross-entropy on one-hot
labels; SGD with momentum 0.9 and a polynomial learning-rate decay (0.01 -> 0.001 over 22000 steps,
power 0.9); after every step the two hidden kernels are max-norm clipped to 1.0.

TF's clip_by_norm(kernel, 1.0, axes=1) on an [in, out] kernel caps the norm of each row (one input
unit's outgoing weights); torch's Linear weight is [out, in], so that is a norm over dim 0 per column.
"""
import numpy as np
import torch
import torch.nn as nn

N_INPUTS, N_HIDDEN1, N_HIDDEN2, N_OUTPUTS = 28 * 28, 300, 100, 10
START_LR, END_LR, DECAY_STEPS, POWER = 0.01, 0.001, 22000, 0.9
MAX_NORM = 1.0


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden1 = nn.Linear(N_INPUTS, N_HIDDEN1)
        self.hidden2 = nn.Linear(N_HIDDEN1, N_HIDDEN2)
        self.output = nn.Linear(N_HIDDEN2, N_OUTPUTS)
        for layer in (self.hidden1, self.hidden2, self.output):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = torch.relu(self.hidden1(x))
        x = torch.relu(self.hidden2(x))
        return self.output(x)


def polynomial_decay(step):
    step = min(step, DECAY_STEPS)
    return ((START_LR - END_LR) * (1 - step / DECAY_STEPS) ** POWER + END_LR) / START_LR


model = MLP()
optimizer = torch.optim.SGD(model.parameters(), lr=START_LR, momentum=0.9)
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, polynomial_decay)
criterion = nn.CrossEntropyLoss(reduction="sum")  # the mistake: TF averages


def max_norm():
    with torch.no_grad():
        for layer in (model.hidden1, model.hidden2):
            w = layer.weight
            norms = w.norm(dim=0, keepdim=True)
            w.copy_(w * MAX_NORM / torch.clamp(norms, min=MAX_NORM))


def batches(n=100, batch_size=16, seed=2):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.random((batch_size, N_INPUTS)), "y": np.eye(N_OUTPUTS)[rng.integers(0, N_OUTPUTS, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "scheduler": scheduler,
            "constraint": max_norm, "data": batches}


if __name__ == "__main__":
    for i, b in enumerate(batches()):
        optimizer.zero_grad()
        loss = criterion(model(torch.from_numpy(b["x"]).float()), torch.from_numpy(b["y"]).float())
        loss.backward()
        optimizer.step()
        scheduler.step()
        max_norm()
        print(i, float(loss))
