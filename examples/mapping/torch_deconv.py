"""PyTorch port of tf1_deconv.py: ``nn.Linear`` to a 4x4x8 map, then ``nn.ConvTranspose2d(8, 3, 4,
stride=2, padding=1)`` (TF's SAME for a 4x4 kernel at stride 2 pads one row and column on each side),
plain SGD as TF1's GradientDescentOptimizer. Images are channel-first here; the target comes as TF's NHWC and is permuted."""

import torch
import torch.nn as nn
import torch.nn.functional as F

Z = 6


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.h0 = nn.Linear(Z, 4 * 4 * 8)
        self.h1 = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)

    def forward(self, z):
        # TF reshapes its dense output as NHWC: the same order here, then to NCHW
        h = F.relu(self.h0(z)).view(-1, 4, 4, 8).permute(0, 3, 1, 2)
        return self.h1(h)


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Decoder()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    def train_step(batch):
        optimizer.zero_grad()
        out = model(batch["z"])
        loss = torch.mean((torch.tanh(out) - batch["target"].permute(0, 3, 1, 2)) ** 2)  # the target in NCHW
        loss.backward()
        optimizer.step()
        return loss

    return {"model": model, "optimizer": optimizer, "train_step": train_step}
