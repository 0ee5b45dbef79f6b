"""The PyTorch port of tf1_seq2seq.py: an encoder nn.LSTM reads the source sequence, its final (h, c) starts a
decoder nn.LSTM that reads the target sequence, a Linear head on every decoder step, cross-entropy on one label
per step, momentum SGD. The model takes two inputs (``"inputs": ["source", "target"]``: called as model(source,
target)). Each LSTM's second bias stays 0 and frozen (TF's LSTM has one bias: see torch_lstm.py).
"""

import numpy as np
import torch
import torch.nn as nn

SRC, TGT, FEATURES, HIDDEN, CLASSES = 6, 4, 3, 5, 3


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.decoder = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        for lstm in (self.encoder, self.decoder):
            with torch.no_grad():
                lstm.bias_hh_l0.zero_()
            lstm.bias_hh_l0.requires_grad_(False)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, source, target):
        _, state = self.encoder(source)
        outputs, _ = self.decoder(target, state)
        return self.head(outputs.reshape(-1, HIDDEN))


def batches(n=100, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield {"source": rng.normal(size=(8, SRC, FEATURES)).astype(np.float32),
               "target": rng.normal(size=(8, TGT, FEATURES)).astype(np.float32),
               "y": rng.integers(0, CLASSES, size=8 * TGT)}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = Seq2Seq()
    params = [p for p in model.parameters() if p.requires_grad]
    return {"model": model, "optimizer": torch.optim.SGD(params, lr=0.1, momentum=0.9), "loss": nn.CrossEntropyLoss(),
            "inputs": ["source", "target"], "targets": ["y"], "data": batches}


if __name__ == "__main__":
    p = parity_program()
    for i, batch in enumerate(batches()):
        p["optimizer"].zero_grad()
        out = p["model"](torch.from_numpy(batch["source"]), torch.from_numpy(batch["target"]))
        loss = p["loss"](out, torch.from_numpy(batch["y"]))
        loss.backward()
        p["optimizer"].step()
        if i % 20 == 0:
            print(i, float(loss))
