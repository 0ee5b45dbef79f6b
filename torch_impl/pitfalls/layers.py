"""Layer pitfalls in PyTorch: the right port and the ``wrong`` variant (NCHW, OIHW, [out, in]).

Mirrors ``tf_impl/v1/pitfalls/layers.py``. The right port converts layouts at its boundary
(``W = K.T``; ``OIHW = HWIO.permute(3, 2, 0, 1)``; activations permuted back to NHWC before
flattening), pads SAME explicitly (``F.pad`` with TF's (before, after), ``-inf`` for max
pooling), uses ``count_include_pad=False``, exact GELU, the reference's LayerNorm epsilon,
and ``p = 1 - keep_prob``.

Variant ``wrong`` (``options["pitfall"]``): ``dense-transpose``, ``conv-layout`` (kernel H/W
swapped), ``flatten-order`` (NCHW flatten), ``same-padding-conv`` / ``same-padding-pool``
(symmetric ``padding=k//2``), ``avgpool-count-pad`` (torch's default), ``leaky-relu-slope`` (F.leaky_relu's default 0.01), ``gelu-approx``
(``approximate="tanh"``), ``layernorm-epsilon`` (``nn.LayerNorm``'s 1e-5),
``dropout-keep-prob`` (``p = keep_prob``), ``dropout-eval-mode`` (dropout skipped: the model in
``eval()``), ``conv-padding`` (SAME ported as Conv2d's default padding 0: another output shape),
``dropout-kind`` (``nn.Dropout``, one draw per element, for a channel dropout: mask from ``V``),
``dropout-site-missing`` (the input dropout left out), ``tf32-emulated`` (matmul operands rounded to
TF32's 10-bit mantissa: what an Ampere+ GPU does to one side; emulated on CPU), and for
tests, ``activation`` (an uncatalogued change: ``options["wrong_activation"]``).
"""

from __future__ import annotations

import numpy as np

from parity.portkit.layout import conv_from_torch, conv_to_torch, dense_from_torch, dense_to_torch, same_padding

from .._common import framework_info, to_numpy, to_tensor, torch

__all__ = ["build", "framework_info", "LayersPort", "round_tf32"]


def round_tf32(x):
    """Round a tensor's mantissa to 10 bits (TF32), keeping the gradient (straight-through)."""
    t = torch()
    m, e = t.frexp(x)
    r = t.ldexp(t.round(m * 2048.0) / 2048.0, e)  # 1 implicit + 10 stored bits
    return x + (r - x).detach()


def _nhwc(x):
    return x.permute(0, 2, 3, 1)


def _nchw(x):
    return x.permute(0, 3, 1, 2)


class LayersPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        self.mistake = case.option("pitfall") if variant == "wrong" else None
        self.o = dict(case.options)
        self.p = {}
        for n, spec in case.params.items():
            shape = spec.shape
            if len(shape) == 2:
                shape = shape[::-1]
            elif len(shape) == 4:
                shape = (shape[3], shape[2], shape[0], shape[1])
            self.p[n] = t.zeros(shape, dtype=getattr(t, dtype), requires_grad=True)
        self.opt = t.optim.SGD(list(self.p.values()), lr=self.o.get("lr", 0.125))

    # -- layouts ------------------------------------------------------------------
    def _to_torch(self, n, value):
        v = np.asarray(value)
        if v.ndim == 2:
            if self.mistake == "dense-transpose" and n == "K1":
                return v  # the mistake: a square kernel copied without transposing
            return dense_to_torch(v)
        if v.ndim == 4:
            if self.mistake == "conv-layout":
                return np.ascontiguousarray(np.transpose(v, (3, 2, 1, 0)))  # the mistake: kh/kw swapped
            return conv_to_torch(v)
        return v

    def _from_torch(self, value):
        v = to_numpy(value)
        return dense_from_torch(v) if v.ndim == 2 else conv_from_torch(v) if v.ndim == 4 else v

    def parameters(self):
        return {n: self._from_torch(p) for n, p in self.p.items()}

    def load(self, params):
        with self.t.no_grad():
            for n, p in self.p.items():
                p.copy_(to_tensor(self._to_torch(n, params[n]), self.dtype))

    # -- forward --------------------------------------------------------------------
    def _linear(self, x, w, b=None):
        F = self.t.nn.functional
        if self.mistake == "tf32-emulated" and self.dtype == "float32":
            # TF32 touches float32 matmuls only (float64 runs in IEEE double on every device)
            x, w = round_tf32(x), round_tf32(w)
        return F.linear(x, w, b)

    def _mlp(self, x):
        t, p, m = self.t, self.p, self.mistake
        name = self.o.get("activation", "relu")
        if m == "activation":
            name = self.o["wrong_activation"]
        act = {"relu": t.relu, "tanh": t.tanh}[name]
        d1 = self._linear(x["X"], p["K1"], p["b1"])
        return {"dense1": d1, "out": self._linear(act(d1), p["K2"])}

    def _gelu(self, x):
        F, p = self.t.nn.functional, self.p
        pre = F.linear(x["X"], p["K1"], p["b1"])
        act = F.gelu(pre, approximate="tanh" if self.mistake == "gelu-approx" else "none")
        return {"pre": pre, "act": act, "out": F.linear(act, p["K2"])}

    def _leaky(self, x):
        F, p = self.t.nn.functional, self.p
        pre = F.linear(x["X"], p["K1"], p["b1"])
        # the mistake: F.leaky_relu's default slope 0.01 for TF's alpha
        slope = 0.01 if self.mistake == "leaky-relu-slope" else self.o["alpha"]
        act = F.leaky_relu(pre, negative_slope=slope)
        return {"pre": pre, "act": act, "out": F.linear(act, p["K2"])}

    def _layernorm(self, x):
        F, p = self.t.nn.functional, self.p
        eps = 1e-5 if self.mistake == "layernorm-epsilon" else self.o["epsilon"]
        ln = F.layer_norm(x["X"], (x["X"].shape[-1],), p["gamma"], p["beta"], eps)
        return {"ln": ln, "out": F.linear(ln, p["K"])}

    def _head(self, h_nchw):
        return self.t.nn.functional.linear(h_nchw.mean(dim=(2, 3)), self.p["K2"])

    def _conv(self, x):
        F, p, o = self.t.nn.functional, self.p, self.o
        xc = _nchw(x["X"])
        stride, k = o.get("stride", 1), p["K"].shape[-1]
        if o.get("padding", "VALID") == "SAME":
            if self.mistake == "same-padding-conv":
                conv = F.conv2d(xc, p["K"], p["b"], stride=stride, padding=k // 2)
            else:
                (pt, pb), (pl, pr) = same_padding(xc.shape[2], k, stride), same_padding(xc.shape[3], k, stride)
                conv = F.conv2d(F.pad(xc, (pl, pr, pt, pb)), p["K"], p["b"], stride=stride)
        else:
            conv = F.conv2d(xc, p["K"], p["b"], stride=stride)
        if self.mistake == "conv-padding":
            conv = F.conv2d(xc, p["K"], p["b"], stride=stride)  # the mistake: Conv2d's default padding=0 for SAME
        return {"conv": _nhwc(conv), "out": self._head(conv)}

    def _spatial_dropout(self, x):
        t, F, p, keep = self.t, self.t.nn.functional, self.p, self.o["keep_prob"]
        conv = t.relu(F.conv2d(_nchw(x["X"]), p["K"], p["b"]))
        if self.mistake == "dropout-kind":
            mask = (x["V"] >= 1.0 - keep).permute(0, 3, 1, 2)  # the mistake: nn.Dropout, one draw per element
        else:
            mask = (x["U"] >= 1.0 - keep)[:, :, None, None]  # nn.Dropout2d: one draw per image and channel
        drop = conv * mask.to(conv.dtype) / keep
        return {"conv": _nhwc(conv), "dropout": _nhwc(drop), "out": self._head(drop)}

    def _two_dropouts(self, x):
        t, F, p, keep = self.t, self.t.nn.functional, self.p, self.o["keep_prob"]
        xin = x["X"] * (x["U0"] >= 1.0 - keep).to(x["X"].dtype) / keep
        if self.mistake == "dropout-site-missing":
            xin = x["X"]  # the mistake: the input dropout left out of the port
        hidden = t.relu(F.linear(xin, p["K1"], p["b1"]))
        drop = hidden * (x["U"] >= 1.0 - keep).to(hidden.dtype) / keep
        return {"input_dropout": xin, "hidden": hidden, "dropout": drop, "out": F.linear(drop, p["K2"])}

    def _flatten(self, x):
        F, p = self.t.nn.functional, self.p
        conv = F.conv2d(_nchw(x["X"]), p["K"], p["b"])
        if self.mistake == "flatten-order":
            flat = self.t.flatten(conv, 1)  # the mistake: (c, h, w) order against (h, w, c) rows
        else:
            flat = self.t.flatten(_nhwc(conv), 1)
        dense = F.linear(flat, p["Kd"])
        return {"conv": _nhwc(conv), "dense": dense, "out": dense}

    def _pool(self, x):
        F, o, m = self.t.nn.functional, self.o, self.mistake
        conv = F.conv2d(_nchw(x["X"]), self.p["K"])
        k, s = o["pool_size"], o["pool_stride"]
        if o["pool"] == "max":
            if m == "same-padding-pool":
                pool = F.max_pool2d(conv, k, s, padding=k // 2)
            else:
                (pt, pb), (pl, pr) = same_padding(conv.shape[2], k, s), same_padding(conv.shape[3], k, s)
                pool = F.max_pool2d(F.pad(conv, (pl, pr, pt, pb), value=float("-inf")), k, s)
        else:
            pool = F.avg_pool2d(conv, k, s, padding=k // 2, count_include_pad=m == "avgpool-count-pad")
        return {"conv": _nhwc(conv), "pool": _nhwc(pool), "out": self._head(pool)}

    def _dropout(self, x):
        t, F, p = self.t, self.t.nn.functional, self.p
        keep = self.o["keep_prob"]
        drop_p = keep if self.mistake == "dropout-keep-prob" else 1.0 - keep
        hidden = t.relu(F.linear(x["X"], p["K1"], p["b1"]))
        # torch's dropout keeps with probability 1 - p and scales by 1/(1 - p); the mask comes
        # from the harness's U (kept where U >= p, as TF's floor(keep_prob + U)).
        drop = hidden * (x["U"] >= drop_p).to(hidden.dtype) / (1.0 - drop_p)
        if self.mistake == "dropout-eval-mode":
            drop = hidden  # the mistake: the model left in eval(): nn.Dropout is the identity
        return {"hidden": hidden, "dropout": drop, "out": F.linear(drop, p["K2"])}

    def step(self, batch):
        x = {k: to_tensor(v, self.dtype) for k, v in batch.items()}
        fn = {
            "dense-transpose": self._mlp, "mlp": self._mlp, "tf32-emulated": self._mlp,
            "gelu-approx": self._gelu, "layernorm-epsilon": self._layernorm, "leaky-relu-slope": self._leaky,
            "conv-layout": self._conv, "same-padding-conv": self._conv, "flatten-order": self._flatten,
            "same-padding-pool": self._pool, "avgpool-count-pad": self._pool, "dropout-keep-prob": self._dropout,
            "dropout-eval-mode": self._dropout, "conv-padding": self._conv, "dropout-kind": self._spatial_dropout,
            "dropout-site-missing": self._two_dropouts,
        }[self.o["scenario"]]
        fwd = fn(x)
        out = fwd["out"]
        loss = ((out - x["T"]) ** 2).mean() if "T" in x else (out**2).mean()
        self.opt.zero_grad()
        loss.backward()
        res = {
            "forward": {k: to_numpy(v) for k, v in fwd.items()},
            "loss": {"loss": to_numpy(loss)},
            "gradients": {n: self._from_torch(p.grad) for n, p in self.p.items()},
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        self.opt.step()
        res["parameters"] = self.parameters()
        return res

    def settings(self) -> dict:
        o, m = self.o, self.mistake
        out = {"framework_convention": "torch"}
        if "keep_prob" in o:
            out["dropout"] = {"argument": "p", "value": o["keep_prob"] if m == "dropout-keep-prob" else 1.0 - o["keep_prob"]}
            out["dropout_kind"] = "channel" if o["scenario"] == "dropout-kind" and m != "dropout-kind" else "element"
            out["dropout_sites"] = (1 if m == "dropout-site-missing" else 2) if o["scenario"] == "dropout-site-missing" else 1
        if o["scenario"] == "layernorm-epsilon":
            out["layernorm_epsilon"] = 1e-5 if m == "layernorm-epsilon" else o["epsilon"]
        if o["scenario"] == "gelu-approx":
            out["gelu"] = "tanh" if m == "gelu-approx" else "exact"
        if o["scenario"] == "leaky-relu-slope":
            out["leaky_relu_slope"] = 0.01 if m == "leaky-relu-slope" else o["alpha"]
        return out


def build(case, dtype, variant=None):
    """Build the torch layer-pitfall port (``variant="wrong"``: make the mistake)."""
    if variant not in (None, "wrong"):
        raise ValueError(f"unknown variant {variant!r} of the torch layer pitfall port")
    return LayersPort(case, dtype, variant)
