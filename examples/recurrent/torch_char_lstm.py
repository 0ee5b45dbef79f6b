"""The character-level LSTM of ``tf1_char_lstm.py`` in PyTorch.

The LSTM is written out in TF's fused layout (one kernel ``[vocab + hidden, 4 * hidden]``, one
bias, gates i, j, f, o, ``forget_bias`` 1.0 added to the forget gate), so that its parameters are
the TF cell's as they are (gradient descent, gradients clipped to a global norm of 5, as the
reference): ``h`` and ``c`` start at zero, each step computes
``c = c * sigmoid(f + 1) + sigmoid(i) * tanh(j)`` and ``h = tanh(c) * sigmoid(o)``.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB, SEQ_LEN, HIDDEN = 12, 6, 16
LEARNING_RATE = 0.5
MAX_GRAD_NORM = 5.0


class FusedLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, forget_bias=1.0):
        super().__init__()
        self.hidden_size, self.forget_bias = hidden_size, forget_bias
        self.kernel = nn.Parameter(torch.empty(input_size + hidden_size, 4 * hidden_size))
        self.bias = nn.Parameter(torch.zeros(4 * hidden_size))
        bound = math.sqrt(6.0 / (input_size + 5 * hidden_size))  # glorot uniform, as TF's default
        nn.init.uniform_(self.kernel, -bound, bound)

    def forward(self, x):  # x: [batch, time, features]
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            gates = torch.cat([x[:, t], h], 1) @ self.kernel + self.bias
            i, j, f, o = gates.chunk(4, 1)
            c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
            h = torch.tanh(c) * torch.sigmoid(o)
            outputs.append(h)
        return torch.stack(outputs, 1)


class CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = FusedLSTM(VOCAB, HIDDEN)
        self.softmax = nn.Linear(HIDDEN, VOCAB)

    def forward(self, x):
        out = self.lstm(F.one_hot(x, VOCAB).to(self.softmax.weight.dtype))
        return self.softmax(out.reshape(-1, HIDDEN))


def next_char_loss(logits, y):
    return F.cross_entropy(logits, y.reshape(-1))


def batches(n=1000, batch_size=4, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        text = rng.integers(0, VOCAB, (batch_size, SEQ_LEN + 1))
        yield {"x": text[:, :-1], "y": text[:, 1:]}


def make_train_step(model, optimizer):
    def train_step(batch):
        optimizer.zero_grad()
        loss = next_char_loss(model(batch["x"]), batch["y"])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        return loss
    return train_step


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    model = CharLSTM()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    return {"model": model, "optimizer": optimizer, "loss": next_char_loss,
            "train_step": make_train_step(model, optimizer), "data": batches}


if __name__ == "__main__":
    model = CharLSTM()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    train_step = make_train_step(model, optimizer)
    for step, batch in enumerate(batches(100)):
        loss = train_step({k: torch.from_numpy(v) for k, v in batch.items()})
        if step % 10 == 0:
            print(step, float(loss))
