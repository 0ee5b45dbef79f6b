"""The PyTorch port of keras_bias_bn.py: conv 3x3x8 (padding 1, with bias) -> BatchNorm2d -> ReLU ->
global average pooling -> Linear 4.

The convolution's bias has gradient zero in exact arithmetic (BatchNorm subtracts the batch mean);
both frameworks compute rounding noise there. Keras BatchNormalization(momentum=0.99, epsilon=1e-3)
is torch's BatchNorm2d(momentum=0.01, eps=1e-3). Keras's Adam adds epsilon (1e-7) to sqrt(v) before
bias correction ("epsilon hat"), torch after it: this port rescales eps every step,
eps_t = eps_hat / sqrt(1 - beta2^t), as examples/seed001/torch_convnet.py does.
"""

import math

import numpy as np
import torch
import torch.nn as nn

EPSILON, BETAS = 1e-7, (0.9, 0.999)


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)
        self.logits = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.logits(x.mean(dim=(2, 3)))


model = ConvBN()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=BETAS, eps=EPSILON)
criterion = nn.CrossEntropyLoss()  # one-hot float targets: softmax cross-entropy, mean over the batch
step = 0


def train_step(batch):
    global step
    step += 1
    for group in optimizer.param_groups:  # Keras's epsilon-hat
        group["eps"] = EPSILON / math.sqrt(1.0 - BETAS[1] ** step)
    optimizer.zero_grad()
    loss = criterion(model(batch["x"]), batch["y"])
    loss.backward()
    optimizer.step()
    return loss


def batches(n=1000, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(batch_size, 6, 6, 3)), "y": np.eye(4)[rng.integers(0, 4, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "train_step": train_step, "data": batches}


if __name__ == "__main__":
    model.train()
    for i, b in zip(range(20), batches()):
        x = torch.from_numpy(b["x"]).float().permute(0, 3, 1, 2)  # NHWC data, NCHW model
        print(i, float(train_step({"x": x, "y": torch.from_numpy(b["y"]).float()})))
