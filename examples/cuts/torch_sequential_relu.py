"""The PyTorch port of keras_activation_layers.py as an ``nn.Sequential``: every ReLU is an ``nn.ReLU``
module (its output is post-ReLU; the conv and linear modules' outputs are pre-ReLU); SGD 0.05."""

import torch
import torch.nn as nn

SIDE, FILTERS, HIDDEN, CLASSES = 8, 8, 16, 4
FIRST_PADDING = 1  # Keras padding="same" for a 3x3 kernel, stride 1

model = nn.Sequential(
    nn.Conv2d(3, FILTERS, 3, padding=FIRST_PADDING),
    nn.ReLU(),
    nn.Conv2d(FILTERS, FILTERS, 3, padding=1 - FIRST_PADDING),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(FILTERS * ((SIDE - 2) // 2) ** 2, HIDDEN),
    nn.ReLU(),
    nn.Linear(HIDDEN, CLASSES),
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)


def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": nn.CrossEntropyLoss()}
