"""keras_activation_layers.py ported with a padding slip: the first conv has no padding (Keras'
``padding="same"`` dropped) and the second got ``padding=1`` instead, so the parameters and the
flattened width still match but the first two feature maps are 6x6, not 8x8 and 6x6."""

import torch
import torch.nn as nn

SIDE, FILTERS, HIDDEN, CLASSES = 8, 8, 16, 4

model = nn.Sequential(
    nn.Conv2d(3, FILTERS, 3),  # Keras: padding="same"
    nn.ReLU(),
    nn.Conv2d(FILTERS, FILTERS, 3, padding=1),  # Keras: valid
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
