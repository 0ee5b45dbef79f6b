"""PyTorch port of tf1_dcgan_bn.py as one writes it first: BatchNorm2d(momentum=0.1) (TF's decay 0.9) keeps the
running statistics, and the step calls D on the real batch, then on G(z), so the second call's update starts from the
first's result. TF's two updates in one sess.run both start from the statistics the step read: the running
statistics differ after the D step (parity names it bn-shared-updates; torch_dcgan_bn.py updates them TF's way).
TF1's Adam epsilon ("epsilon hat": eps_t = eps_hat / sqrt(1 - beta2^t)); TF's SAME convolutions and NHWC flatten.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

Z_DIM, GF, DF = 8, 8, 8
LR, BETA1, BETA2, EPSILON = 2e-4, 0.5, 0.999, 1e-8


class Same5x5(nn.Module):  # TF's 5x5 stride-2 SAME convolution
    def __init__(self, n_in, n_out):
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, 5, 2)

    def forward(self, x):
        return self.conv(F.pad(x, (1, 2, 1, 2)))


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(Z_DIM, 4 * 4 * GF)
        self.deconv = nn.ConvTranspose2d(GF, 3, 5, 2)

    def forward(self, z):
        h0 = F.relu(self.lin(z).view(-1, 4, 4, GF).permute(0, 3, 1, 2))
        return torch.tanh(self.deconv(h0)[:, :, 1:9, 1:9])  # TF's SAME output: 8x8 of the 11x11


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.h0 = Same5x5(3, DF)
        self.h1 = Same5x5(DF, 2 * DF)
        self.bn1 = nn.BatchNorm2d(2 * DF, eps=1e-5, momentum=0.1)  # TF decay 0.9; running_var unbiased, as fused
        self.lin = nn.Linear(2 * 2 * 2 * DF, 1)

    def forward(self, x):
        h0 = F.leaky_relu(self.h0(x), 0.2)
        h1 = F.leaky_relu(self.bn1(self.h1(h0)), 0.2)
        return self.lin(h1.permute(0, 2, 3, 1).reshape(x.shape[0], -1))  # TF's flatten order (h, w, c)


def init(m):  # TF's N(0, 0.02) weights, zero biases
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)


netG, netD = Generator(), Discriminator()
netG.apply(init), netD.apply(init)
optD = torch.optim.Adam(netD.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)
optG = torch.optim.Adam(netG.parameters(), lr=LR, betas=(BETA1, BETA2), eps=EPSILON)


def adam_step(optimizer):
    """optimizer.step() with TF1's epsilon hat: eps_t = eps_hat / sqrt(1 - beta2^t)."""
    state = optimizer.state.get(optimizer.param_groups[0]["params"][0], {})
    t = int(state.get("step", 0)) + 1
    for group in optimizer.param_groups:
        group["eps"] = EPSILON / math.sqrt(1.0 - BETA2 ** t)
    optimizer.step()


def train_step(batch):
    real, z = batch["x"], batch["z"]
    optD.zero_grad()
    d_real = netD(real)  # D first on the real batch, then G
    d_fake = netD(netG(z).detach())
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    d_loss.backward()
    adam_step(optD)
    for _ in range(2):  # G twice, as the TF1 script
        optG.zero_grad()
        d_fake = netD(netG(z))
        g_loss = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        g_loss.backward()
        adam_step(optG)
    return g_loss


def batches(n=100, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": np.tanh(rng.normal(size=(8, 3, 8, 8))), "z": rng.uniform(-1, 1, (8, Z_DIM))}


def parity_program():
    return {"model": {"G": netG, "D": netD}, "optimizer": {"D": optD, "G": optG}, "train_step": train_step,
            "data": lambda: batches()}


if __name__ == "__main__":
    for i, b in enumerate(batches(20)):
        print(i, float(train_step({k: torch.tensor(v, dtype=torch.float32) for k, v in b.items()}).detach()))
