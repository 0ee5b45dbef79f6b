"""torch_logsoftmax_nll.py with ``NLLLoss(reduction='sum')``: the batch's losses summed, not averaged:
8 times Keras' ``'categorical_crossentropy'`` (keras_string_loss.py); diverges at step 0, ``loss``."""

import torch
from torch import nn

from torch_logsoftmax_nll import LR, MLP


def parity_program():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    nll = nn.NLLLoss(reduction="sum")

    def loss(out, y):
        return nll(torch.log_softmax(out, dim=1), y.argmax(dim=1))

    return {"model": model, "optimizer": optimizer, "loss": loss}
