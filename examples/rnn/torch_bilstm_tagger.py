"""The PyTorch port of tf1_bilstm_tagger.py and keras_bilstm_tagger.py: nn.LSTM(bidirectional=True) over 5
steps, whose sequence output is both directions concatenated on the last axis ([forward | backward], the
backward one in input time order, as TF's), a Linear head on every step, cross-entropy on one label per step,
momentum SGD. Both second biases (``bias_hh_l0``, ``bias_hh_l0_reverse``) stay 0 and frozen, as in
torch_lstm.py: TF's LSTMs have one bias.
"""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 3


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True, bidirectional=True)
        for name in ("bias_hh_l0", "bias_hh_l0_reverse"):
            bias = getattr(self.lstm, name)
            with torch.no_grad():
                bias.zero_()
            bias.requires_grad_(False)
        self.head = nn.Linear(2 * HIDDEN, CLASSES)

    def forward(self, x):
        out, _ = self.lstm(x)  # [N, STEPS, 2H]
        return self.head(out.reshape(-1, 2 * HIDDEN))


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=8 * STEPS)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Tagger()
    params = [p for p in model.parameters() if p.requires_grad]
    return {"model": model, "optimizer": torch.optim.SGD(params, lr=0.1, momentum=0.9), "loss": nn.CrossEntropyLoss(),
            "inputs": ["x"], "targets": ["y"], "data": batches}


if __name__ == "__main__":
    p = parity_program()
    for i, batch in enumerate(batches()):
        p["optimizer"].zero_grad()
        loss = p["loss"](p["model"](torch.from_numpy(batch["x"])), torch.from_numpy(batch["y"]))
        loss.backward()
        p["optimizer"].step()
        if i % 20 == 0:
            print(i, float(loss))
