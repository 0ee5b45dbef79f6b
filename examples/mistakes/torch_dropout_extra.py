"""PLANTED MISTAKE (an nn.Dropout(0.25) after the hidden ReLU that the original does not have) in the port of
examples/adadelta/torch_adadelta_mlp.py (corpus 06 met a Dropout2d only the port has).

The PyTorch port of tf1_adadelta_mlp.py: 20 -> 16 (ReLU) -> 3 logits, Adadelta with TF's settings.

torch.optim.Adadelta's defaults are not TF1's (lr 1.0, rho 0.9, eps 1e-6 vs AdadeltaOptimizer's
lr 0.001, rho 0.95, eps 1e-8): every one is given as the TF program sets it. The layers keep torch's
default initialisers and the data is standardised here (its own pipeline): parity copies the TF
weights and feeds the TF batches, so neither shows in the step-by-step comparison; its report lists
them under "what this comparison does not cover".
"""
import numpy as np
import torch
import torch.nn as nn

N_IN, N_HIDDEN, N_OUT = 20, 16, 3

model = nn.Sequential(nn.Linear(N_IN, N_HIDDEN), nn.ReLU(), nn.Dropout(0.25),  # the mistake: a site of its own
                      nn.Linear(N_HIDDEN, N_OUT))
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-6)
loss_fn = nn.CrossEntropyLoss()


def batches(n=100, batch_size=16, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        x = rng.random((batch_size, N_IN))
        yield {"x": (x - 0.5) / 0.29, "y": np.eye(N_OUT)[rng.integers(0, N_OUT, batch_size)]}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": loss_fn, "data": batches}


if __name__ == "__main__":
    for i, b in enumerate(batches(20)):
        optimizer.zero_grad()
        loss = loss_fn(model(torch.from_numpy(b["x"]).float()), torch.from_numpy(b["y"]).float())
        loss.backward()
        optimizer.step()
        print(i, float(loss))
