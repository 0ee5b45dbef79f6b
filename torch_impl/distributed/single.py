"""The single-device reference of a torch data-parallel case (variant ``single``): one process,
the global batch, the maths data parallelism must reproduce, with each replica's share of the loss
and of every gradient computed on a copy of the parameters that only that replica's rows use.
"""

from __future__ import annotations

import numpy as np

from .config import config, shard
from .replica import Replica

__all__ = ["SinglePort"]


class SinglePort:
    """One process, the global batch: the run data parallelism must reproduce.

    Replica r's share of a gradient is the gradient with respect to a copy of the
    parameters that only shard r's rows use (``torch.func.functional_call``), the batch
    statistics and the loss being those of the global batch; the shares add up to the
    gradient (tested), and the update uses that sum, as one device computes it.
    """

    def __init__(self, case, dtype):
        cfg = config(case, dtype, "single")
        self.rep = Replica(cfg)
        self.world = cfg["world"]

    def settings(self):
        return {"world_size": 1, "replica_shares": self.world, "lr": self.rep.cfg["options"].get("lr")}

    def parameters(self):
        return self.rep.parameters()

    def load(self, params):
        self.rep.load(params)

    def step(self, batch):
        rep, t = self.rep, self.rep.t
        from torch.func import functional_call

        key = "X" if rep.cfg["model"] == "mlp" else "x"
        n = batch[key].shape[0]
        world = self.world
        named = dict(rep.model.named_parameters())
        copies = [{k: v.detach().clone().requires_grad_(True) for k, v in named.items()} for _ in range(world)]
        shards = [rep.inputs(batch, shard(n, world, r)) for r in range(world)]
        if rep.cfg["model"] == "mlp":
            outs = [functional_call(rep.model, copies[r], shards[r][0]) for r in range(world)]
            h1, h2, logits = (t.cat([o[i] for o in outs]) for i in range(3))
            acts = {"hidden1": h1, "hidden2": h2, "logits": logits}
        else:
            logits, acts = self._convnet_forward(copies, shards)
        y = t.cat([s[1] for s in shards])
        per_example = t.nn.functional.cross_entropy(logits, y, reduction="none")
        loss = per_example.mean()
        params = [p for c in copies for p in c.values()]
        grads = t.autograd.grad(loss, params)
        k = len(named)
        shares = [dict(zip(named, grads[r * k:(r + 1) * k])) for r in range(world)]
        out = {
            "forward": {name: rep.act_out(name, v) for name, v in acts.items()},
            "loss": {"loss": loss.detach().numpy()},
            "gradients": {},
        }
        per = n // world
        for r in range(world):
            out["loss"][f"replica{r}/loss"] = (per_example[r * per:(r + 1) * per].sum() / n).detach().numpy()
        lookup = {id(p): name for name, p in named.items()}
        rep.opt.zero_grad()
        with t.no_grad():
            for name, p in named.items():
                p.grad = sum(s[name] for s in shares)
        tensors = rep.tensors()
        out["gradients"] = {cn: rep.out(p.grad, kind) for cn, (p, kind) in tensors.items()}
        for r in range(world):
            for cn, (p, kind) in tensors.items():
                out["gradients"][f"replica{r}/{cn}"] = rep.out(shares[r][lookup[id(p)]], kind)
        out["learning_rate"] = {"lr": np.asarray(rep.opt.param_groups[0]["lr"], dtype=rep.cfg["dtype"])}
        rep.opt.step()
        out["parameters"] = {cn: rep.out(p, kind) for cn, (p, kind) in tensors.items()}
        slots = rep.slots()
        if slots is not None:
            out["slots"] = slots
        state = rep.state()
        if state:
            out["state"] = state
        return out

    def _convnet_forward(self, copies, shards):
        """Seed 003's forward on the global batch, each shard through its own parameter copy."""
        rep, t = self.rep, self.rep.t
        m, F = rep.model, t.nn.functional
        conv = t.cat([F.conv2d(x, c["conv.weight"], padding=1) for c, ((x, _), _) in zip(copies, shards)])
        bn = m.bn
        mean, var = conv.mean(dim=(0, 2, 3)), conv.var(dim=(0, 2, 3), unbiased=False)
        shape = (1, -1, 1, 1)
        xhat = (conv - mean.view(shape)) / t.sqrt(var.view(shape) + bn.eps)
        per = conv.shape[0] // len(copies)
        normed = t.cat([xhat[r * per:(r + 1) * per] * c["bn.weight"].view(shape) + c["bn.bias"].view(shape)
                        for r, c in enumerate(copies)])
        with t.no_grad():
            bn.running_mean.sub_((bn.running_mean - mean) * bn.momentum)
            bn.running_var.sub_((bn.running_var - var) * bn.momentum)
        relu = t.relu(normed)
        pool = m.pool(relu)
        flat = t.flatten(pool, 1)
        mask = t.cat([s[0][1] for s in shards])
        drop = flat * mask / rep.cfg["options"].get("keep", 0.75)
        logits = t.cat([F.linear(drop[r * per:(r + 1) * per], c["dense.weight"], c["dense.bias"])
                        for r, c in enumerate(copies)])
        acts = {"conv": conv, "bn": normed, "relu": relu, "pool": pool, "flatten": flat, "dropout": drop,
                "dense": t.softmax(logits, dim=-1)}
        return logits, acts
