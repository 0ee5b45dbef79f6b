"""The PyTorch port of tf1_lstm.py (and keras_lstm.py): nn.LSTM over 5 steps, a Linear head on the last
output, cross-entropy, momentum SGD.

nn.LSTM has two biases (b_ih, b_hh) where TF has one: their sum is what the gates see, and both would be
trained, moving the sum twice as fast as TF's one bias. The port keeps b_hh at 0 and frozen, so the LSTM
trains like TF's (parity loads TF's bias, with forget_bias 1.0 on the f gate, into b_ih).
"""

import numpy as np
import torch
import torch.nn as nn

STEPS, FEATURES, HIDDEN, CLASSES = 5, 3, 4, 2
TRAIN_SECOND_BIAS = False  # (torch_lstm_two_biases.py: the same port with both biases trained)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        if not TRAIN_SECOND_BIAS:
            with torch.no_grad():
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


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
