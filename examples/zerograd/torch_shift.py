"""The PyTorch port of tf1_shift.py: a 6-16-4 tanh MLP, one scalar ``shift`` added to every logit.

The shift's gradient is zero in exact arithmetic (a softmax ignores a common shift of its logits);
both frameworks compute rounding noise there, and Adam turns the noise into tiny updates.

Adam: TF1 adds epsilon to sqrt(v) before bias correction ("epsilon hat"), torch after it; to train
like the TF1 original this port rescales eps every step: eps_t = eps_hat / sqrt(1 - beta2^t)
(as examples/seed001/torch_convnet.py does).
"""

import math

import numpy as np
import torch
import torch.nn as nn


class ShiftedMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(6, 16)
        self.output = nn.Linear(16, 4)
        self.shift = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        return self.output(torch.tanh(self.hidden(x))) + self.shift


model = ShiftedMLP()
EPSILON, BETAS = 1e-8, (0.9, 0.999)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=BETAS, eps=EPSILON)
criterion = nn.CrossEntropyLoss()  # one-hot float targets: softmax cross-entropy, mean over the batch
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


def batches(n=1000, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 6)), "y": np.eye(4)[rng.integers(0, 4, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "train_step": train_step, "data": batches}


if __name__ == "__main__":
    for i, b in zip(range(100), batches()):
        loss = train_step({k: torch.from_numpy(v).float() for k, v in b.items()})
        if i % 20 == 0:
            print(i, float(loss))
