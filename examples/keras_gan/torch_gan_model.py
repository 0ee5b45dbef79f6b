"""PyTorch port of keras_gan_model.py: D stepped then G, each network with its own Adam (Keras' epsilon 1e-7
added as Keras adds it), the noise drawn inside the step with torch.randn, once for D's update and once for
G's, as the Keras model's train_step draws it.
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
optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)
optG = torch.optim.Adam(netG.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)


def adam_step(optimizer):
    """optimizer.step() with Keras' epsilon ("epsilon hat", added before the bias correction)."""
    state = optimizer.state.get(optimizer.param_groups[0]["params"][0], {})
    t = int(state.get("step", 0)) + 1
    for group in optimizer.param_groups:
        group["eps"] = EPSILON / math.sqrt(1.0 - BETA2 ** t)
    optimizer.step()


def train_step(batch):
    real = batch["x"]
    z = torch.randn(real.shape[0], Z_DIM, dtype=real.dtype)
    optD.zero_grad()
    d_real, d_fake = netD(real), netD(netG(z).detach())
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    adam_step(optD)
    z = torch.randn(real.shape[0], Z_DIM, dtype=real.dtype)
    optG.zero_grad()
    d_fake = netD(netG(z))
    g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    g_loss.backward()
    adam_step(optG)
    return g_loss


def parity_program():
    return {"model": {"generator": netG, "discriminator": netD}, "optimizer": {"discriminator": optD, "generator": optG},
            "train_step": train_step}


if __name__ == "__main__":
    data = np.random.default_rng(0).normal(1.0, 0.5, (800, X_DIM))
    for i in range(100):
        print(i, float(train_step({"x": torch.tensor(data[i * 8 % 800:][:8], dtype=torch.float32)})))
