"""PLANTED MISTAKE (D's Adam keeps torch's default beta1 0.9, not Keras' 0.5 of keras_gan.py).

PyTorch port of keras_gan.py: the same tiny GAN, D stepped then G, each network with its own Adam
(Keras' defaults written out: betas (0.5, 0.999), epsilon 1e-7 added as Keras adds it). The noise
comes with the batch (batch["z"]), so both programs see the same z.

For parity, parity_program() returns both models and both optimizers (dicts), and the train_step that
steps them: each optimizer.step() it calls is one phase (docs/own-model.md, "Several optimizers / a
hand-written update").
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1, BETA2, EPSILON = 2e-3, 0.5, 0.999, 1e-7


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.h1 = nn.Linear(Z_DIM, HIDDEN)
        self.out = nn.Linear(HIDDEN, X_DIM)

    def forward(self, z):
        return self.out(F.relu(self.h1(z)))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.h1 = nn.Linear(X_DIM, HIDDEN)
        self.out = nn.Linear(HIDDEN, 1)

    def forward(self, x):
        return self.out(F.leaky_relu(self.h1(x), 0.2))


netG, netD = Generator(), Discriminator()
optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(0.9, BETA2), eps=EPSILON)
optG = torch.optim.Adam(netG.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)


def adam_step(optimizer):
    """optimizer.step() with Keras' epsilon: Keras adds it to sqrt(v) before the bias correction ("epsilon
    hat"), torch after it; eps_t = eps_hat / sqrt(1 - beta2^t) makes torch's step Keras'."""
    state = optimizer.state.get(optimizer.param_groups[0]["params"][0], {})
    t = int(state.get("step", 0)) + 1
    for group in optimizer.param_groups:
        group["eps"] = EPSILON / math.sqrt(1.0 - BETA2 ** t)
    optimizer.step()


def train_step(batch):
    real, z = batch["x"], batch["z"]
    # discriminator: real -> 1, fake -> 0
    optD.zero_grad()
    fake = netG(z)
    d_real = netD(real)
    d_fake = netD(fake.detach())
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    adam_step(optD)
    # generator: fool the discriminator
    optG.zero_grad()
    d_fake = netD(netG(z))
    g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    g_loss.backward()
    adam_step(optG)
    return g_loss


def batches(n=100, batch_size=8, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(1.0, 0.5, (batch_size, X_DIM)), "z": rng.normal(size=(batch_size, Z_DIM))}


def parity_program():
    return {"model": {"generator": netG, "discriminator": netD}, "optimizer": {"discriminator": optD, "generator": optG},
            "train_step": train_step, "inputs": ["x", "z"], "data": lambda: batches()}


if __name__ == "__main__":
    for i, b in enumerate(batches(50)):
        print(i, float(train_step({k: torch.tensor(v, dtype=torch.float32) for k, v in b.items()})))
