"""A wrong port of tf1_gcn_sparse_dropout.py: its GraphConvolution forgets adj @ (otherwise the pygcn-style port): a ``GraphConvolution``
module computing ``adj @ (x @ W) + b`` with ``torch.mm``, ``F.dropout`` and ``F.relu`` in ``forward``;
SGD 0.2.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NODES, FEATURES, HIDDEN, CLASSES, DROPOUT = 10, 6, 16, 3, 0.5


def normalized_ring(n):
    a = np.eye(n)
    for i in range(n):
        a[i, (i + 1) % n] = a[(i + 1) % n, i] = 1.0
    d = 1.0 / np.sqrt(a.sum(1))
    return a * d[:, None] * d[None, :]


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        bound = math.sqrt(6.0 / (in_features + out_features))
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x, adj):
        support = torch.mm(x, self.weight)
        return support + self.bias  # the mistake: the neighbourhood (adj @) left out


class GCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.gc1 = GraphConvolution(FEATURES, HIDDEN)
        self.gc2 = GraphConvolution(HIDDEN, CLASSES)
        self.register_buffer("adj", torch.from_numpy(normalized_ring(NODES)))

    def forward(self, x):
        x = F.dropout(x, DROPOUT, training=self.training)
        x = F.relu(self.gc1(x, self.adj))
        x = F.dropout(x, DROPOUT, training=self.training)
        return self.gc2(x, self.adj)


model = GCN()
optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
criterion = nn.CrossEntropyLoss()


def batches(n=50, seed=11):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(NODES, FEATURES))
    labels = np.eye(CLASSES)[rng.integers(0, CLASSES, NODES)]
    for _ in range(n):
        yield {"x": features, "y": labels}


# --- for parity diff (docs/own-model.md) ---
def parity_program():
    return {"model": model, "optimizer": optimizer, "loss": criterion, "data": batches}
