"""Embedding pitfalls in PyTorch: the right port and the ``wrong`` variant.

Mirrors ``tf_impl/v1/pitfalls/embed.py``. The right port looks rows up with ``F.embedding`` (no
``padding_idx``: TF trains every row) and, under ``clip``, computes TF's global norm: the gradient of
each looked-up row counted once per occurrence (``tf.clip_by_global_norm`` over the ``IndexedSlices``),
read from the looked-up rows' own gradient, then scales every gradient by ``c / max(norm, c)``.

Variant ``wrong`` (``options["pitfall"]``): ``embedding-padding-idx`` (``nn.Embedding(padding_idx=0)``:
row 0 gets no gradient), ``clip-norm-sparse-rows`` (``clip_grad_norm_`` over the dense gradients: a
repeated id's row summed before it is squared).
"""

from __future__ import annotations

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import framework_info, to_numpy, to_tensor, torch

__all__ = ["build", "framework_info", "EmbedPort"]


class EmbedPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        self.o = dict(case.options)
        dt = getattr(t, dtype)
        self.E = t.zeros(case.params["E"].shape, dtype=dt, requires_grad=True)
        self.W = t.zeros(case.params["W"].shape[::-1], dtype=dt, requires_grad=True)
        self.opt = t.optim.SGD([self.E, self.W], lr=self.o["lr"])

    def parameters(self):
        return {"E": to_numpy(self.E), "W": dense_from_torch(to_numpy(self.W))}

    def load(self, params):
        with self.t.no_grad():
            self.E.copy_(to_tensor(params["E"], self.dtype))
            self.W.copy_(to_tensor(dense_to_torch(params["W"]), self.dtype))

    def _grads(self):
        return {"E": to_numpy(self.E.grad), "W": dense_from_torch(to_numpy(self.W.grad))}

    def step(self, batch):
        t, F, m = self.t, self.t.nn.functional, self.mistake
        ids = to_tensor(batch["ids"]).long()
        T = to_tensor(batch["T"], self.dtype)
        pad = 0 if m == "embedding-padding-idx" else None  # the mistake: nn.Embedding(..., padding_idx=0)
        rows = F.embedding(ids, self.E, padding_idx=pad)
        rows.retain_grad()
        pooled = rows.mean(dim=1)
        y = F.linear(pooled, self.W)
        loss = ((y - T) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        out = {"forward": {"pooled": to_numpy(pooled), "y": to_numpy(y)}, "loss": {"loss": to_numpy(loss)}, "gradients": self._grads()}
        c = self.o.get("clip")
        if c:
            with t.no_grad():
                if m == "clip-norm-sparse-rows":
                    # the mistake: clip_grad_norm_'s norm, over the dense rows (written out: clip_grad_norm_ itself
                    # divides by norm + 1e-6, a 1e-7 relative difference float64 would see on its own)
                    norm = float(t.sqrt((self.E.grad**2).sum() + (self.W.grad**2).sum()))
                else:  # TF's IndexedSlices norm: each looked-up row's gradient once per occurrence
                    norm = float(t.sqrt((rows.grad**2).sum() + (self.W.grad**2).sum()))
                for p in (self.E, self.W):
                    p.grad.mul_(c / max(norm, c))
            out["processed_gradients"] = self._grads()
        out["learning_rate"] = {"lr": self.opt.param_groups[0]["lr"]}
        self.opt.step()
        out["parameters"] = self.parameters()
        return out

    def settings(self) -> dict:
        m, c = self.mistake, self.o.get("clip")
        out = {"framework_convention": "torch", "optimizer": "sgd", "padding_idx": 0 if m == "embedding-padding-idx" else None}
        if c:
            out["clip"] = {"kind": "global", "value": c}
            out["clip_norm_rows"] = "dense rows" if m == "clip-norm-sparse-rows" else "per occurrence (IndexedSlices)"
        return out


def build(case, dtype, variant=None):
    """Build the torch embedding-pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch embedding pitfall port")
    return EmbedPort(case, dtype, variant)
