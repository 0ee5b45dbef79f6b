"""Weight decay and "no gradient this step" in PyTorch: the right port, and the ``wrong`` variant.

Mirrors ``tf_impl/v1/pitfalls/decay.py`` (L2 in the loss, Adam with a head that gets no
gradient at some steps) and ``tf_impl/v2/pitfalls/decay.py`` (Keras AdamW). The right port:

* ``wd * tf.nn.l2_loss(W)`` -> ``0.5 * wd * W.pow(2).sum()`` on the kernels only (l2_loss is
  sum/2; equivalently ``SGD(weight_decay=wd)`` on a kernels-only parameter group, but then
  the decay is in neither the loss nor ``.grad``);
* Keras ``AdamW(weight_decay=wd)`` -> ``torch.optim.AdamW(weight_decay=wd)`` (decoupled; not
  ``Adam(weight_decay=wd)``, which adds ``wd * w`` to the gradient inside the moments), with
  TF's epsilon-hat mapped to ``eps / sqrt(1 - beta2**t)`` each step;
* a head skipped at some step -> its ``.grad`` is ``None`` after ``zero_grad()`` (set_to_none),
  and torch's optimizers skip such a parameter entirely; TF feeds dense zeros, which decay
  the moments and keep the momentum moving: fill ``None`` gradients with zeros.

Variant ``wrong``: ``l2-loss-half`` (``wd * W.pow(2).sum()``: twice TF's term),
``decay-on-bias`` (the L2 term over ``model.parameters()``, biases too), ``adamw-decoupled``
(``Adam(weight_decay=wd)``), ``none-grad-skip`` (the ``None`` gradient left as it is).
"""

from __future__ import annotations

import math

from .._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "DecayPort"]


class DecayPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = m = case.option("pitfall") if variant == "wrong" else None
        o = self.o = dict(case.options)
        # parameters kept in TF's layout ([in, out] kernels): x @ W, as tf.matmul
        self.p = {n: t.zeros(case.params[n].shape, dtype=torch_dtype(dtype), device=device(), requires_grad=True) for n in case.params}
        params = list(self.p.values())
        if o["scenario"] == "l2":
            self.opt = t.optim.SGD(params, lr=o["lr"])
        elif o["scenario"] == "adamw":
            betas, wd = (o["beta1"], o["beta2"]), o["weight_decay"]
            if m == "adamw-decoupled":
                self.opt = t.optim.Adam(params, lr=o["lr"], betas=betas, eps=o["epsilon"], weight_decay=wd)  # the mistake: coupled
            else:
                self.opt = t.optim.AdamW(params, lr=o["lr"], betas=betas, eps=o["epsilon"], weight_decay=wd)
        else:
            self.opt = t.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["epsilon"])
        self.t_step = 0

    def parameters(self):
        return {n: to_numpy(p) for n, p in self.p.items()}

    def load(self, params):
        with self.t.no_grad():
            for n, p in self.p.items():
                p.copy_(to_tensor(params[n], self.dtype))

    def _forward(self, x):
        t, p, o, m = self.t, self.p, self.o, self.mistake
        if o["scenario"] == "nograd":
            shared = x["X"] @ p["W1"]
            ya = shared @ p["W2"]
            loss = ((ya - x["T"]) ** 2).mean()
            fwd = {"y_a": ya, "y_b": shared @ p["W3"]}
            if float(x["use"]) != 0:  # the second head only when its data is there (a Python branch)
                loss = loss + ((fwd["y_b"] - x["T"]) ** 2).mean()
            return fwd, loss
        h = t.relu(x["X"] @ p["W1"] + p["b1"])
        y = h @ p["W2"] + p["b2"]
        loss = ((y - x["T"]) ** 2).mean()
        if o["scenario"] == "l2":
            wd = o["weight_decay"]
            if m == "l2-loss-half":
                loss = loss + wd * (p["W1"].pow(2).sum() + p["W2"].pow(2).sum())  # the mistake: l2_loss is sum / 2
            elif m == "decay-on-bias":
                loss = loss + 0.5 * wd * sum(q.pow(2).sum() for q in self.p.values())  # the mistake: biases decayed too
            else:
                loss = loss + 0.5 * wd * (p["W1"].pow(2).sum() + p["W2"].pow(2).sum())
        return {"hidden": h, "y": y}, loss

    def step(self, batch):
        t, o = self.t, self.o
        x = {k: to_tensor(v, self.dtype) for k, v in batch.items()}
        fwd, loss = self._forward(x)
        self.opt.zero_grad()  # set_to_none=True: a parameter the loss does not reach keeps grad None
        loss.backward()
        if self.mistake != "none-grad-skip":
            for q in self.p.values():
                if q.grad is None:
                    q.grad = t.zeros_like(q)  # TF's dense zero gradient: the optimizer still updates the slots
        grads = {n: to_numpy(q.grad) if q.grad is not None else to_numpy(t.zeros_like(q)) for n, q in self.p.items()}
        self.t_step += 1
        if o["scenario"] != "l2":
            # TF/Keras add epsilon-hat to the uncorrected sqrt(v): torch eps = eps_tf / sqrt(1 - beta2^t)
            self.opt.param_groups[0]["eps"] = o["epsilon"] / math.sqrt(1.0 - o["beta2"] ** self.t_step)
        self.opt.step()
        out = {
            "forward": {k: to_numpy(v) for k, v in fwd.items()},
            "loss": {"loss": to_numpy(loss)},
            "gradients": grads,
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
            "parameters": self.parameters(),
        }
        if o["scenario"] != "l2":
            zeros = {n: to_numpy(t.zeros_like(q)) for n, q in self.p.items()}
            out["slots"] = {}
            for n, q in self.p.items():
                st = self.opt.state.get(q, {})
                out["slots"][f"m/{n}"] = to_numpy(st["exp_avg"]) if "exp_avg" in st else zeros[n]
                out["slots"][f"v/{n}"] = to_numpy(st["exp_avg_sq"]) if "exp_avg_sq" in st else zeros[n]
        return out

    def settings(self) -> dict:
        o, m = self.o, self.mistake
        if o["scenario"] == "l2":
            coef = o["weight_decay"] * (2 if m == "l2-loss-half" else 1)
            return {"framework_convention": "torch", "optimizer": "sgd",
                    "weight_decay": {"coefficient": coef, "on": "all" if m == "decay-on-bias" else "kernels", "form": "L2 in the loss"}}
        if o["scenario"] == "adamw":
            form = "coupled (in the gradient)" if m == "adamw-decoupled" else "decoupled (x lr)"
            return {"framework_convention": "torch", "optimizer": "adamw",
                    "weight_decay": {"coefficient": o["weight_decay"], "on": "all", "form": form}}
        return {"framework_convention": "torch", "optimizer": "adam",
                "no_gradient": "skipped (grad None)" if m == "none-grad-skip" else "zeros (the optimizer updates the slots)"}


def build(case, dtype, variant=None):
    """Build the torch weight-decay / no-gradient port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch decay pitfall port")
    return DecayPort(case, dtype, variant)
