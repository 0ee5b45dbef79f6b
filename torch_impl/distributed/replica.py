"""One replica of a torch data-parallel run: the seed networks (the MLP of seed 002, the
BatchNorm convnet of seed 003, whose Keras-style BatchNorm can synchronise its batch moments over
the replicas with an autograd-aware all-reduce) and :class:`Replica`, a replica's model, SGD
optimizer, shard of the batch, loss and the conversions between its tensors and the canonical
(TF) names and layouts; used in each DDP worker, or alone by the single-device reference.
"""

from __future__ import annotations

import numpy as np

from parity.portkit.layout import conv_from_torch, conv_to_torch, dense_from_torch, dense_to_torch, flatten_permutation, nchw_to_nhwc

from .. import torch as _torch
from .config import MLP_LAYERS

__all__ = ["Replica", "convnet", "sync_moments"]


def sync_moments(t, x, dims, world):
    """Batch mean and biased variance over the global batch (all replicas), differentiable."""
    import warnings

    import torch.distributed.nn.functional as dnn

    # torch 2.13 marks this public, autograd-aware all_reduce deprecated in favour of a
    # private module (torch.distributed._functional_collectives): the public one stays here.
    warnings.filterwarnings("ignore", message=r".*nn.functional.all_reduce is deprecated.*", category=FutureWarning)
    n = x.numel() // x.shape[1]
    count = n * world
    mean = dnn.all_reduce(x.sum(dim=dims)) / count
    centred = x - mean.view(1, -1, 1, 1)
    var = dnn.all_reduce((centred * centred).sum(dim=dims)) / count
    return mean, var


def convnet(t, cfg, sync: bool):
    o = cfg["options"]
    filters, classes, keep = o.get("filters", 8), o.get("classes", 10), o.get("keep", 0.75)
    side = cfg["shape"][0] // 2
    world = cfg["world"]

    class KerasBatchNorm2d(t.nn.BatchNorm2d):
        """BatchNorm whose moving variance is the biased batch variance (Keras); optionally synchronised."""

        def forward(self, x):
            if not self.training:
                return super().forward(x)
            dims = (0, 2, 3)
            if sync:
                mean, var = sync_moments(t, x, dims, world)
            else:
                mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
            shape = (1, -1, 1, 1)
            y = (x - mean.view(shape)) / t.sqrt(var.view(shape) + self.eps) * self.weight.view(shape) + self.bias.view(shape)
            with t.no_grad():
                self.running_mean.sub_((self.running_mean - mean) * self.momentum)
                self.running_var.sub_((self.running_var - var) * self.momentum)
                self.num_batches_tracked.add_(1)
            return y

    class Net(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = t.nn.Conv2d(3, filters, 3, padding=1, bias=False)
            self.bn = KerasBatchNorm2d(filters, eps=o.get("bn_epsilon", 1e-3), momentum=1.0 - o.get("bn_momentum", 0.99))
            self.pool = t.nn.MaxPool2d(2)
            self.dense = t.nn.Linear(side * side * filters, classes)

        def forward(self, x, mask):
            acts = {}
            acts["conv"] = h = self.conv(x)
            acts["bn"] = h = self.bn(h)
            acts["relu"] = h = t.relu(h)
            acts["pool"] = h = self.pool(h)
            acts["flatten"] = h = t.flatten(h, 1)
            acts["dropout"] = h = h * mask / keep
            logits = self.dense(h)
            acts["dense"] = t.softmax(logits, dim=-1)
            return logits, acts

    return Net()


class Replica:
    """One replica's model, optimizer and conversions (used in a worker, or alone by ``single``)."""

    def __init__(self, cfg, rank: int = 0):
        t = _torch()
        self.t, self.cfg, self.rank, self.world = t, cfg, rank, cfg["world"]
        self.variant, o = cfg["variant"], cfg["options"]
        self.tdtype = {"float64": t.float64, "float32": t.float32}[cfg["dtype"]]
        # one GPU per rank under NCCL; the single-device reference and gloo stay on the CPU
        self.device = f"cuda:{rank}" if cfg["backend"] == "nccl" and cfg["variant"] != "single" else "cpu"
        self.lr = o.get("lr", 0.01) * (self.world if self.variant == "lr_scaled" else 1)
        if cfg["model"] == "mlp":
            from ..mlp import MLP

            self.model = MLP().to(self.tdtype).to(self.device)
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr)
        else:
            sync = self.variant not in ("local_bn", "single")
            self.model = convnet(t, cfg, sync=sync and self.world > 1).to(self.tdtype).to(self.device)
            self.opt = t.optim.SGD(self.model.parameters(), lr=self.lr, momentum=o.get("momentum", 0.9),
                                   nesterov=o.get("nesterov", True))
            side = cfg["shape"][0] // 2
            self.perm = flatten_permutation(side, side, o.get("filters", 8))
            self.inverse = np.argsort(self.perm)
        self.model.train()

    # canonical name -> (parameter, kind)
    def tensors(self, model=None):
        m = model or self.model
        if self.cfg["model"] == "mlp":
            out = {}
            for layer in MLP_LAYERS:
                mod = getattr(m, layer)
                out[f"{layer}/kernel"] = (mod.weight, "dense")
                out[f"{layer}/bias"] = (mod.bias, None)
            return out
        return {"conv/kernel": (m.conv.weight, "conv"), "bn/gamma": (m.bn.weight, None), "bn/beta": (m.bn.bias, None),
                "dense/kernel": (m.dense.weight, "flatdense"), "dense/bias": (m.dense.bias, None)}

    def out(self, value, kind):
        arr = value.detach().cpu().numpy().copy()
        if kind == "dense":
            return dense_from_torch(arr)
        if kind == "conv":
            return conv_from_torch(arr)
        if kind == "flatdense":
            return np.ascontiguousarray(arr.T[self.inverse])
        return arr

    def into(self, arr, kind):
        arr = np.asarray(arr)
        if kind == "dense":
            arr = dense_to_torch(arr)
        elif kind == "conv":
            arr = conv_to_torch(arr)
        elif kind == "flatdense":
            arr = np.ascontiguousarray(arr[self.perm].T)
        return self.t.from_numpy(np.array(arr, copy=True)).to(self.tdtype).to(self.device)

    def state(self):
        if self.cfg["model"] != "bn_convnet":
            return {}
        bn = self.model.bn
        return {"bn/moving_mean": self.out(bn.running_mean, None), "bn/moving_variance": self.out(bn.running_var, None)}

    def parameters(self):
        out = {n: self.out(p, k) for n, (p, k) in self.tensors().items()}
        out.update(self.state())
        return out

    def load(self, params):
        t = self.t
        with t.no_grad():
            for n, (p, k) in self.tensors().items():
                p.copy_(self.into(params[n], k))
            if self.cfg["model"] == "bn_convnet":
                self.model.bn.running_mean.copy_(self.into(params["bn/moving_mean"], None))
                self.model.bn.running_var.copy_(self.into(params["bn/moving_variance"], None))

    def inputs(self, batch, rows):
        """This replica's shard of the global batch, as torch tensors in torch layout."""
        if self.cfg["model"] == "mlp":
            x = self.tensor(batch["X"][rows])
            return (x,), self.tensor(batch["y"][rows])
        x = np.ascontiguousarray(np.transpose(batch["x"][rows], (0, 3, 1, 2)))
        mask = np.asarray(batch["keep_mask"])
        if self.variant == "same_dropout":
            n = rows.stop - rows.start
            mask = mask[:n]  # every replica draws replica 0's mask
        else:
            mask = mask[rows]
        mask = np.ascontiguousarray(mask[:, self.perm])
        return (self.tensor(x), self.tensor(mask)), self.tensor(batch["y"][rows])

    def tensor(self, arr):
        return self.t.from_numpy(np.ascontiguousarray(arr)).to(self.tdtype).to(self.device)

    def activations(self, outputs):
        if self.cfg["model"] == "mlp":
            h1, h2, logits = outputs
            return logits, {"hidden1": h1, "hidden2": h2, "logits": logits}
        return outputs

    def act_out(self, name, value):
        arr = value.detach().cpu().numpy().copy()
        if arr.ndim == 4:
            return nchw_to_nhwc(arr)
        if name in ("flatten", "dropout"):
            return np.ascontiguousarray(arr[:, self.inverse])
        return arr

    def loss_of(self, logits, y, global_batch):
        t = self.t
        per_example = t.nn.functional.cross_entropy(logits, y, reduction="none")
        if self.variant == "global_batch_loss":
            return per_example.sum() / global_batch  # TF's compute_average_loss, ported literally
        return per_example.mean()

    def slots(self):
        if self.cfg["model"] != "bn_convnet":
            return None
        return {f"{n}/momentum": self.out(-self.lr * self.opt.state[p]["momentum_buffer"], k)
                for n, (p, k) in self.tensors().items()}
