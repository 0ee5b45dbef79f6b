"""A BatchNorm called twice per step in PyTorch: ``nn.BatchNorm1d -> Linear`` on two batches, MSE, SGD.

Mirrors ``tf_impl/v1/pitfalls/bn_shared.py``. The right port updates the running statistics as the TF1 reference
does (both calls' updates from the statistics the step started with): the second call gets fresh buffers holding
the step's statistics, and after backward (which reads the buffers the first call updated) the module's buffers
get the second call's move added to the first's. Variant ``wrong``
(``bn-shared-updates``): the module is simply called twice, so the second update starts from the first's result.
"""

from __future__ import annotations

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "SharedBatchNormPort"]


class SharedBatchNormPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        o = dict(case.options)
        self.bn = t.nn.BatchNorm1d(4, eps=o["epsilon"], momentum=1.0 - o["momentum"])
        self.fc = t.nn.Linear(4, 1, bias=False)
        self.model = t.nn.Sequential(self.bn, self.fc).to(dtype=torch_dtype(dtype), device=device())
        self.model.train()
        self.opt = t.optim.SGD(self.model.parameters(), lr=o["lr"])

    def _params(self):
        return {"gamma": self.bn.weight, "beta": self.bn.bias}

    def parameters(self):
        out = {k: to_numpy(p) for k, p in self._params().items()}
        out["K"] = dense_from_torch(to_numpy(self.fc.weight))
        out["moving_mean"], out["moving_variance"] = to_numpy(self.bn.running_mean), to_numpy(self.bn.running_var)
        return out

    def load(self, params):
        with self.t.no_grad():
            for k, p in self._params().items():
                p.copy_(to_tensor(params[k], self.dtype))
            self.fc.weight.copy_(to_tensor(dense_to_torch(params["K"]), self.dtype))
            self.bn.running_mean.copy_(to_tensor(params["moving_mean"], self.dtype))
            self.bn.running_var.copy_(to_tensor(params["moving_variance"], self.dtype))

    def step(self, batch):
        x1, x2 = to_tensor(batch["X"], self.dtype), to_tensor(batch["X2"], self.dtype)
        t1, t2 = to_tensor(batch["T"], self.dtype), to_tensor(batch["T2"], self.dtype)
        bn = self.bn
        stats = (bn.running_mean, bn.running_var)
        start = [s.detach().clone() for s in stats]
        y1 = bn(x1)
        if self.mistake != "bn-shared-updates":
            # the fix: TF's second update starts from the step's statistics, not the first's result. The second call
            # gets fresh buffers holding them (the first call's backward still reads the buffers it updated)
            bn.running_mean, bn.running_var = (s0.clone() for s0 in start)
        y2 = bn(x2)
        out1, out2 = self.fc(y1), self.fc(y2)
        loss = ((out1 - t1) ** 2).mean() + ((out2 - t2) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        if self.mistake != "bn-shared-updates":
            with self.t.no_grad():  # both moves from the step's statistics, into the module's own buffers
                for s, s0, s2 in zip(stats, start, (bn.running_mean, bn.running_var)):
                    s.add_(s2 - s0)
            bn.running_mean, bn.running_var = stats
        grads = {k: to_numpy(p.grad) for k, p in self._params().items()}
        grads["K"] = dense_from_torch(to_numpy(self.fc.weight.grad))
        res = {
            "forward": {"bn": to_numpy(y1), "out": to_numpy(out1), "bn_2": to_numpy(y2), "out_2": to_numpy(out2)},
            "loss": {"loss": to_numpy(loss)},
            "gradients": grads,
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        self.opt.step()
        p = self.parameters()
        res["parameters"] = {k: p[k] for k in ("gamma", "beta", "K")}
        res["state"] = {"moving_mean": p["moving_mean"], "moving_variance": p["moving_variance"]}
        return res

    def settings(self) -> dict:
        return {"framework_convention": "torch", "bn_momentum": self.bn.momentum, "bn_momentum_convention": "torch",
                "bn_epsilon": self.bn.eps, "bn_running_var": "unbiased"}


def build(case, dtype, variant=None):
    """Build the torch shared-BatchNorm pitfall port (``variant="wrong"``: chained updates)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch shared-BatchNorm pitfall port")
    return SharedBatchNormPort(case, dtype, variant)
