"""BatchNorm and train/eval-mode pitfalls in PyTorch: ``nn.BatchNorm1d -> Linear``, MSE, SGD.

Mirrors ``tf_impl/v1/pitfalls/bn.py``. The right port maps TF's conventions: ``momentum =
1 - tf_momentum`` (torch weighs the *new* batch by momentum), ``eps = tf_epsilon`` (1e-3, not
torch's 1e-5), ``train()`` mode; against a biased-variance reference (Keras 3, non-fused
tf.layers) it updates the running statistics itself with the biased batch variance, since
``nn.BatchNorm`` always stores the unbiased one.

Variant ``wrong``: ``bn-momentum`` (TF's 0.99 copied literally), ``bn-epsilon`` (torch's
default eps), ``bn-running-var`` (plain ``nn.BatchNorm1d`` against a biased reference),
``torch-eval-mode`` (the model left in ``eval()``).
"""

from __future__ import annotations

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "BatchNormPort"]


class BatchNormPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = m = case.option("pitfall") if variant == "wrong" else None
        o = self.o = dict(case.options)
        c = case.params["gamma"].shape[0]
        self.momentum = o["momentum"] if m == "bn-momentum" else 1.0 - o["momentum"]
        self.eps = 1e-5 if m == "bn-epsilon" else o["epsilon"]
        self.manual_var = o.get("variance", "unbiased") == "biased" and m != "bn-running-var"
        self.bn = t.nn.BatchNorm1d(c, eps=self.eps, momentum=self.momentum)
        self.fc = t.nn.Linear(c, 1, bias=False)
        self.model = t.nn.Sequential(self.bn, self.fc).to(dtype=torch_dtype(dtype), device=device())
        self.model.train()
        if m == "torch-eval-mode":
            self.model.eval()  # the mistake: left in eval mode (e.g. after an evaluation pass)
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
        t, F = self.t, self.t.nn.functional
        x, target = to_tensor(batch["X"], self.dtype), to_tensor(batch["T"], self.dtype)
        if self.manual_var:
            # F.batch_norm without running stats normalises with the batch statistics; the
            # running ones get the biased variance, as the reference does.
            y = F.batch_norm(x, None, None, self.bn.weight, self.bn.bias, True, 0.0, self.eps)
            with t.no_grad():
                mom = self.momentum
                self.bn.running_mean.mul_(1 - mom).add_(mom * x.mean(0))
                self.bn.running_var.mul_(1 - mom).add_(mom * x.var(0, unbiased=False))
        else:
            y = self.bn(x)
        out = self.fc(y)
        loss = ((out - target) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        grads = {k: to_numpy(p.grad) for k, p in self._params().items()}
        grads["K"] = dense_from_torch(to_numpy(self.fc.weight.grad))
        res = {
            "forward": {"bn": to_numpy(y), "out": to_numpy(out)},
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
        return {
            "framework_convention": "torch",
            "bn_momentum": self.momentum,
            "bn_momentum_convention": "torch",
            "bn_epsilon": self.eps,
            "bn_running_var": "biased" if self.manual_var else "unbiased",
        }


def build(case, dtype, variant=None):
    """Build the torch BatchNorm pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch BatchNorm pitfall port")
    return BatchNormPort(case, dtype, variant)
