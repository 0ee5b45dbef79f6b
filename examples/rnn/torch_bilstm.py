"""The PyTorch port of keras_bilstm.py: nn.LSTM(bidirectional=True) over 5 steps, a Linear head on the two
final states (forward, then backward: Keras Bidirectional's concatenation), cross-entropy, momentum SGD.

Each direction has its own weights (``weight_ih_l0`` and ``weight_ih_l0_reverse``...) and two biases where
Keras's LSTM has one: the port keeps both second biases (``bias_hh_l0``, ``bias_hh_l0_reverse``) at 0 and
frozen, as torch_lstm.py does.
"""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2


class Classifier(nn.Module):
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
        _, (h, _) = self.lstm(x)
        return self.head(torch.cat([h[0], h[1]], dim=1))


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"x": rng.normal(size=(8, STEPS, FEATURES)).astype(np.float32), "y": rng.integers(0, CLASSES, size=8)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Classifier()
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
