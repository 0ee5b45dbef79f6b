"""torch_logsoftmax_nll.py on class indices: ``cross_entropy`` (mean over the batch) of the logits,
as Keras ``softmax`` + ``'sparse_categorical_crossentropy'`` (keras_string_loss_sparse.py)."""

import torch
from torch.nn import functional as F

from torch_logsoftmax_nll import LR, MLP


def parity_program():
    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    return {"model": model, "optimizer": optimizer, "loss": lambda out, y: F.cross_entropy(out, y.long())}
