"""LSTM pitfalls in PyTorch: ``nn.LSTM`` loaded from a TF1 ``LSTMCell``'s kernel and bias.

Mirrors ``tf_impl/v1/pitfalls/rnn.py``. The right port splits the kernel's rows into
``weight_ih`` (``[:in]``) and ``weight_hh`` (``[in:]``), transposes, reorders the gate blocks
i, j, f, o (TF1) -> i, f, g, o (torch), folds ``forget_bias`` into the f block of
``bias_ih`` and keeps ``bias_hh`` at zero and frozen (TF has one bias; two trainable biases
would move twice as fast).

Variant ``wrong``: ``lstm-double-bias`` (TF's one bias copied into bias_ih and bias_hh; with option
``bias_hh="trained"``: bias_hh zeroed but trained, reported as ``bias_hh``),
``lstm-gate-order`` (blocks copied in TF1's order), ``lstm-forget-bias``
(``forget_bias`` not ported; with option ``cell="hand"`` the cell is written out over the LSTM's
parameters and its first forget gate is compared, as a hand-written cell's gate outputs are).
"""

from __future__ import annotations

import numpy as np

from parity.portkit.layout import dense_from_torch, dense_to_torch

from .._common import framework_info, to_numpy, to_tensor, torch

__all__ = ["build", "framework_info", "LSTMPort", "TF1_TO_TORCH_GATES"]

#: torch block k is TF1 block TF1_TO_TORCH_GATES[k] (i, j, f, o -> i, f, g=j, o); its own inverse.
TF1_TO_TORCH_GATES = (0, 2, 1, 3)


class LSTMPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        self.n_in = case.data.args["arrays"]["X"]["shape"][2]
        self.units = case.params["K2"].shape[0]
        self.lstm = t.nn.LSTM(self.n_in, self.units, batch_first=True).to(getattr(t, dtype))
        # option "bias_hh": "trained": bias_hh zeroed but left trainable (the mistake's second form); its value is
        # reported as "bias_hh" (TF's has none: zero), as parity's mapping pairs it with the reference's zero
        self.trained_hh = case.option("bias_hh") == "trained"
        self.lstm.bias_hh_l0.requires_grad_(self.trained_hh and self.mistake == "lstm-double-bias")
        self.fc = t.nn.Linear(self.units, 1, bias=False).to(getattr(t, dtype))
        self.forget_bias = 0.0 if self.mistake == "lstm-forget-bias" else case.option("forget_bias")
        self.perm = (0, 1, 2, 3) if self.mistake == "lstm-gate-order" else TF1_TO_TORCH_GATES
        self.opt = t.optim.SGD([p for p in list(self.lstm.parameters()) + list(self.fc.parameters()) if p.requires_grad], lr=case.option("lr"))

    def _blocks(self, a: np.ndarray, axis: int) -> np.ndarray:
        parts = np.split(a, 4, axis=axis)
        return np.concatenate([parts[k] for k in self.perm], axis=axis)

    def _canonical(self, w_ih, w_hh, b_ih, k2, subtract_bias=True):
        kernel = self._blocks(np.concatenate([w_ih.T, w_hh.T], axis=0), 1)
        bias = self._blocks(b_ih, 0)
        if subtract_bias:
            bias = bias.copy()
            bias[2 * self.units : 3 * self.units] -= self.forget_bias
        return {"kernel": kernel, "bias": bias, "K2": dense_from_torch(k2)}

    def parameters(self):
        L = self.lstm
        out = self._canonical(to_numpy(L.weight_ih_l0), to_numpy(L.weight_hh_l0), to_numpy(L.bias_ih_l0), to_numpy(self.fc.weight))
        if self.trained_hh:
            out["bias_hh"] = self._blocks(to_numpy(L.bias_hh_l0), 0)
        return out

    def load(self, params):
        kernel = self._blocks(np.asarray(params["kernel"]), 1)
        bias = np.asarray(params["bias"], dtype=np.float64).copy()
        bias[2 * self.units : 3 * self.units] += self.forget_bias  # TF1 adds it at run time
        bias = self._blocks(bias, 0)
        L = self.lstm
        with self.t.no_grad():
            L.weight_ih_l0.copy_(to_tensor(kernel[: self.n_in].T, self.dtype))
            L.weight_hh_l0.copy_(to_tensor(kernel[self.n_in :].T, self.dtype))
            L.bias_ih_l0.copy_(to_tensor(bias, self.dtype))
            if self.mistake == "lstm-double-bias" and not self.trained_hh:
                L.bias_hh_l0.copy_(to_tensor(bias, self.dtype))  # the mistake: TF's one bias copied into both
            else:
                L.bias_hh_l0.zero_()
            self.fc.weight.copy_(to_tensor(dense_to_torch(params["K2"]), self.dtype))

    def _cell(self, X):
        """The LSTM written out over nn.LSTM's own parameters (option cell="hand"): the outputs and the first forget gate."""
        t, L = self.t, self.lstm
        h = X.new_zeros(X.shape[0], self.units)
        c, outs, forget = h, [], []
        for k in range(X.shape[1]):
            z = X[:, k] @ L.weight_ih_l0.T + L.bias_ih_l0 + h @ L.weight_hh_l0.T + L.bias_hh_l0
            i, f, g, o = z.chunk(4, 1)
            forget.append(t.sigmoid(f))
            c = forget[-1] * c + t.sigmoid(i) * t.tanh(g)
            h = t.sigmoid(o) * t.tanh(c)
            outs.append(h)
        return t.stack(outs, 1), {"f_t0": to_numpy(forget[0])}

    def step(self, batch):
        X, T = to_tensor(batch["X"], self.dtype), to_tensor(batch["T"], self.dtype)
        hs, gates = self._cell(X) if self.case.option("cell") == "hand" else (self.lstm(X)[0], {})
        out = self.fc(hs[:, -1])
        loss = ((out - T) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        L = self.lstm
        grads = self._canonical(to_numpy(L.weight_ih_l0.grad), to_numpy(L.weight_hh_l0.grad), to_numpy(L.bias_ih_l0.grad),
                                to_numpy(self.fc.weight.grad), subtract_bias=False)
        res = {
            "forward": gates | {"h": to_numpy(hs), "out": to_numpy(out)},
            "loss": {"loss": to_numpy(loss)},
            "gradients": grads,
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        self.opt.step()
        res["parameters"] = self.parameters()
        return res

    def settings(self) -> dict:
        order = "i,j,f,o" if self.mistake != "lstm-gate-order" else "i,f,g,o"
        double = self.mistake == "lstm-double-bias" and not self.trained_hh  # trained from zero: a mistake the numbers show
        return {"framework_convention": "torch", "lstm_gate_order": order, "lstm_forget_bias": self.forget_bias,
                "lstm_bias_hh": "copy of bias_ih" if double else "zero"}


def build(case, dtype, variant=None):
    """Build the torch LSTM pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch LSTM pitfall port")
    return LSTMPort(case, dtype, variant)
