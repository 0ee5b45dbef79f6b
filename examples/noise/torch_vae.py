"""The PyTorch port of keras_vae.py (and tf1_vae.py): ``eps = torch.randn_like(std)`` in ``forward``;
mean squared reconstruction error plus the KL term (mean over the batch); SGD 0.05."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IN, HIDDEN, LATENT = 12, 16, 3


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(IN, HIDDEN)
        self.mu = nn.Linear(HIDDEN, LATENT)
        self.logvar = nn.Linear(HIDDEN, LATENT)
        self.dec = nn.Linear(LATENT, IN)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def forward(self, x):
        h = F.relu(self.enc(x))
        mu, logvar = self.mu(h), self.logvar(h)
        return self.dec(self.reparameterize(mu, logvar)), mu, logvar


model = VAE()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def loss_function(recon, x, mu, logvar):
    kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    return F.mse_loss(recon, x) + kl


def train_step(batch):
    optimizer.zero_grad()
    recon, mu, logvar = model(batch["x"])
    loss = loss_function(recon, batch["y"], mu, logvar)
    loss.backward()
    optimizer.step()
    return loss


def batches(n=50, batch_size=8, seed=11):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.normal(size=(batch_size, IN))
        yield {"x": x, "y": x}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "train_step": train_step, "data": batches}


if __name__ == "__main__":
    for b in batches(10):
        print(float(train_step({k: torch.from_numpy(v).float() for k, v in b.items()})))
