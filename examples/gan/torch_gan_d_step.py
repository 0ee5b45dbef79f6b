"""PyTorch port of tf1_gan_d_step.py: the discriminator's step alone. Both networks are the model (D reads
G(z)); the optimizer holds D's parameters only, so G's are the model's state (compared after each step,
unchanged), as TF1 reports the generator's variables no train op updates.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM, X_DIM, HIDDEN = 4, 6, 16
LR, BETA1, BETA2, EPSILON = 2e-3, 0.5, 0.999, 1e-8


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
optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)


def train_step(batch):
    optD.zero_grad()
    d_real = netD(batch["x"])
    d_fake = netD(netG(batch["z"]).detach())
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    # TF1's epsilon is added to sqrt(v) before the bias correction ("epsilon hat"): eps_hat / sqrt(1 - beta2^t)
    state = optD.state.get(optD.param_groups[0]["params"][0], {})
    for group in optD.param_groups:
        group["eps"] = EPSILON / math.sqrt(1.0 - BETA2 ** (int(state.get("step", 0)) + 1))
    optD.step()
    return d_loss


def batches(n=100, batch_size=8, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(1.0, 0.5, (batch_size, X_DIM)), "z": rng.normal(size=(batch_size, Z_DIM))}


def parity_program():
    return {"model": nn.ModuleDict({"G": netG, "D": netD}), "optimizer": optD, "train_step": train_step,
            "data": lambda: batches()}
