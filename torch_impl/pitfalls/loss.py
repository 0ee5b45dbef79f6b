"""Loss pitfalls in PyTorch: the right port and the ``wrong`` variant.

Mirrors ``tf_impl/v1/pitfalls/loss.py`` (``softmax_cross_entropy_with_logits`` + ``reduce_mean``
-> ``F.cross_entropy(reduction="mean")`` with probability targets; TF1 Adam -> torch Adam with
the per-step epsilon) and ``tf_impl/v2/pitfalls/loss.py`` (Keras probability crossentropy ->
renormalise, ``clamp(p, 1e-7, 1 - 1e-7)``, ``-sum(y log p)``, mean).

Variant ``wrong``: ``loss-reduction`` (``reduction="sum"``), ``keras-prob-clipping``
(``F.cross_entropy`` on the logits: exact, unclipped), ``loss-on-probabilities`` (``F.nll_loss`` on the
softmax output: -mean(p_y)).
"""

from __future__ import annotations

import math

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import framework_info, to_numpy, to_tensor, torch

__all__ = ["build", "framework_info", "LossPort", "KERAS_EPSILON"]

KERAS_EPSILON = 1e-7  # keras.config.epsilon(): the probability clip of its crossentropies


class LossPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        o = self.o = dict(case.options)
        self.W = t.zeros(case.params["W"].shape[::-1], dtype=getattr(t, dtype), requires_grad=True)
        self.b = t.zeros(case.params["b"].shape, dtype=getattr(t, dtype), requires_grad=True)
        self.adam = o["scenario"] in ("loss-reduction", "loss-on-probabilities")
        if self.adam:
            self.opt = t.optim.Adam([self.W, self.b], lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["epsilon"])
        else:
            self.opt = t.optim.SGD([self.W, self.b], lr=o["lr"])
        self.k = 0

    def parameters(self):
        return {"W": dense_from_torch(to_numpy(self.W)), "b": to_numpy(self.b)}

    def load(self, params):
        with self.t.no_grad():
            self.W.copy_(to_tensor(dense_to_torch(params["W"]), self.dtype))
            self.b.copy_(to_tensor(params["b"], self.dtype))

    def step(self, batch):
        t, F = self.t, self.t.nn.functional
        X, Y = to_tensor(batch["X"], self.dtype), to_tensor(batch["Y"], self.dtype)
        logits = F.linear(X, self.W, self.b)
        probs = t.softmax(logits, dim=-1)
        o_scen = self.o["scenario"]
        if o_scen == "loss-reduction":
            loss = F.cross_entropy(logits, Y, reduction="sum" if self.mistake == "loss-reduction" else "mean")
        elif o_scen == "loss-on-probabilities":
            # the mistake: nll_loss on the softmax output (log_softmax was meant): -mean(p_y)
            loss = F.nll_loss(probs, Y.argmax(-1)) if self.mistake == "loss-on-probabilities" else F.cross_entropy(logits, Y)
        elif self.mistake == "keras-prob-clipping":
            loss = F.cross_entropy(logits, Y)
        else:
            p = t.clamp(probs / probs.sum(-1, keepdim=True), KERAS_EPSILON, 1.0 - KERAS_EPSILON)
            loss = -(Y * t.log(p)).sum(-1).mean()
        self.opt.zero_grad()
        loss.backward()
        out = {
            "forward": {"logits": to_numpy(logits), "probs": to_numpy(probs)},
            "loss": {"loss": to_numpy(loss)},
            "gradients": {"W": dense_from_torch(to_numpy(self.W.grad)), "b": to_numpy(self.b.grad)},
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        self.k += 1
        if self.adam:  # TF1's epsilon-hat, as in torch_impl/pitfalls/optim.py
            self.opt.param_groups[0]["eps"] = self.o["epsilon"] / math.sqrt(1.0 - self.o["beta2"] ** self.k)
        self.opt.step()
        out["parameters"] = self.parameters()
        return out

    def settings(self) -> dict:
        out = {"framework_convention": "torch", "loss_reduction": "sum" if self.mistake == "loss-reduction" else "mean"}
        if self.o["scenario"] == "loss-on-probabilities":
            out["loss_input"] = "probabilities (nll_loss)" if self.mistake == "loss-on-probabilities" else "logits"
        if self.o["scenario"] == "keras-prob-clipping":
            out["probability_clip"] = None if self.mistake == "keras-prob-clipping" else KERAS_EPSILON
        return out


def build(case, dtype, variant=None):
    """Build the torch loss-pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch loss pitfall port")
    return LossPort(case, dtype, variant)
