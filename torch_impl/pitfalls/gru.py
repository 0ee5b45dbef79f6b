"""GRU pitfall in PyTorch: a TF1 ``GRUCell`` (reset before the candidate matmul) ported.

``nn.GRU`` applies the reset gate *after* the hidden matmul, ``n = tanh(W_in x + b_in + r * (W_hn h
+ b_hn))``, like Keras ``GRU(reset_after=True)``; TF1's ``GRUCell`` (and Keras
``reset_after=False``) computes ``tanh(W x + U (r * h) + b)``. No weight copy makes ``nn.GRU``
compute the TF1 cell, so the right port writes the cell out (parameters in TF's layout).

Variant ``wrong``: ``gru-reset-after`` (``nn.GRU`` with the TF1 weights copied in, ``b_hh = 0``).
"""

from __future__ import annotations

import numpy as np

from .._common import framework_info, to_numpy, to_tensor, torch

__all__ = ["build", "framework_info", "GRUPort"]


class GRUPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        self.n_in = case.data.args["arrays"]["X"]["shape"][2]
        self.units = u = case.params["K2"].shape[0]
        dt = getattr(t, dtype)
        if self.mistake == "gru-reset-after":
            self.gru = t.nn.GRU(self.n_in, u, batch_first=True).to(dt)
            self.gru.bias_hh_l0.requires_grad_(False)
            self.k2 = t.zeros(case.params["K2"].shape, dtype=dt, requires_grad=True)
            trained = [self.gru.weight_ih_l0, self.gru.weight_hh_l0, self.gru.bias_ih_l0, self.k2]
        else:
            self.p = {n: t.zeros(s.shape, dtype=dt, requires_grad=True) for n, s in case.params.items()}
            trained = list(self.p.values())
        self.opt = t.optim.SGD(trained, lr=case.option("lr"))

    # -- nn.GRU <-> TF1 layout (the wrong port): rows r, z, n of weight_ih / weight_hh --------------
    def _from_gru(self, w_ih, w_hh, b_ih, k2):
        u = self.units
        gk = np.concatenate([np.concatenate([w_ih[:u].T, w_ih[u : 2 * u].T], 1), np.concatenate([w_hh[:u].T, w_hh[u : 2 * u].T], 1)], 0)
        ck = np.concatenate([w_ih[2 * u :].T, w_hh[2 * u :].T], 0)
        return {"gates_kernel": gk, "gates_bias": b_ih[: 2 * u], "candidate_kernel": ck, "candidate_bias": b_ih[2 * u :], "K2": k2}

    def parameters(self):
        if self.mistake:
            g = self.gru
            return self._from_gru(to_numpy(g.weight_ih_l0), to_numpy(g.weight_hh_l0), to_numpy(g.bias_ih_l0), to_numpy(self.k2))
        return {n: to_numpy(p) for n, p in self.p.items()}

    def load(self, params):
        with self.t.no_grad():
            if not self.mistake:
                for n, p in self.p.items():
                    p.copy_(to_tensor(params[n], self.dtype))
                return
            i, gk, ck = self.n_in, np.asarray(params["gates_kernel"]), np.asarray(params["candidate_kernel"])
            u = self.units
            w_ih = np.concatenate([gk[:i, :u].T, gk[:i, u:].T, ck[:i].T], 0)
            w_hh = np.concatenate([gk[i:, :u].T, gk[i:, u:].T, ck[i:].T], 0)
            g = self.gru
            g.weight_ih_l0.copy_(to_tensor(w_ih, self.dtype))
            g.weight_hh_l0.copy_(to_tensor(w_hh, self.dtype))
            g.bias_ih_l0.copy_(to_tensor(np.concatenate([params["gates_bias"], params["candidate_bias"]]), self.dtype))
            g.bias_hh_l0.zero_()
            self.k2.copy_(to_tensor(params["K2"], self.dtype))

    def _cell_forward(self, X):
        t, p = self.t, self.p
        h = t.zeros(X.shape[0], self.units, dtype=X.dtype)
        outs = []
        for k in range(X.shape[1]):
            value = t.sigmoid(t.cat([X[:, k], h], 1) @ p["gates_kernel"] + p["gates_bias"])
            r, u = value.split(self.units, 1)
            c = t.tanh(t.cat([X[:, k], r * h], 1) @ p["candidate_kernel"] + p["candidate_bias"])  # reset before the matmul
            h = u * h + (1 - u) * c
            outs.append(h)
        return t.stack(outs, 1), h @ p["K2"]

    def step(self, batch):
        X, T = to_tensor(batch["X"], self.dtype), to_tensor(batch["T"], self.dtype)
        if self.mistake:
            hs, _ = self.gru(X)
            out = hs[:, -1] @ self.k2
        else:
            hs, out = self._cell_forward(X)
        loss = ((out - T) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        if self.mistake:
            g = self.gru
            grads = self._from_gru(to_numpy(g.weight_ih_l0.grad), to_numpy(g.weight_hh_l0.grad), to_numpy(g.bias_ih_l0.grad), to_numpy(self.k2.grad))
        else:
            grads = {n: to_numpy(p.grad) for n, p in self.p.items()}
        res = {"forward": {"h": to_numpy(hs), "out": to_numpy(out)}, "loss": {"loss": to_numpy(loss)}, "gradients": grads,
               "learning_rate": {"lr": self.opt.param_groups[0]["lr"]}}
        self.opt.step()
        res["parameters"] = self.parameters()
        return res

    def settings(self) -> dict:
        where = "after the hidden matmul (nn.GRU)" if self.mistake else "before the candidate matmul (TF1 GRUCell, Keras reset_after=False)"
        return {"framework_convention": "torch", "gru_reset": where}


def build(case, dtype, variant=None):
    """Build the torch GRU pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch GRU pitfall port")
    return GRUPort(case, dtype, variant)
