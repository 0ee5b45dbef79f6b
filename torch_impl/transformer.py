"""The real-size transformer encoder in PyTorch: ``nn.TransformerEncoder``, ``torch.optim.AdamW``.

What a torch user migrating the Keras model writes: ``nn.Embedding`` for tokens and
positions, ``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer(batch_first=True,
norm_first=False, activation="gelu", dropout=0)`` (post-LayerNorm, the Keras block's
order), mean pooling, ``nn.Linear`` head, ``F.cross_entropy`` (mean), ``AdamW`` with two
parameter groups (LayerNorm and biases without weight decay). What has to be mapped by
hand, each written out below:

* LayerNorm epsilon: torch's default is 1e-5, Keras' 1e-3, the case's 1e-6: passed as
  ``layer_norm_eps``;
* attention weights: ``nn.MultiheadAttention`` packs the query, key and value projections
  into one ``in_proj_weight`` ``[3d, d]`` (``[out, in]``, queries first); Keras keeps three ``EinsumDense`` kernels ``[d, heads, head_dim]``.
  Both split heads the same way (feature ``h * head_dim + j`` is head h's j-th), so each
  Keras kernel reshaped to ``[d, d]`` and transposed is one third of ``in_proj_weight``;
  the output projection's Keras kernel ``[heads, head_dim, d]`` reshaped to ``[d, d]``
  and transposed is ``out_proj.weight``;
* dense kernels ``[in, out]`` -> ``nn.Linear.weight`` ``[out, in]``;
* Adam epsilon: Keras adds it to sqrt of the *uncorrected* v (epsilon hat), torch to the
  bias-corrected one; the port sets each group's ``eps`` to ``eps_hat / sqrt(1 -
  beta2^t)`` before step t, which makes torch's update Keras' exactly (PITFALLS P09);
* weight decay: both decouple it (``p -= lr * wd * p`` before the Adam step: torch
  multiplies by ``1 - lr * wd``, Keras subtracts ``p * wd * lr``); torch's default is 0.01,
  Keras' 0.004: passed explicitly. Which parameters decay follows Keras'
  ``exclude_from_weight_decay(var_names=...)``: a pattern in the canonical name's last
  part (the LayerNorm gains, the head's bias).

The activations recorded per block (attention output, LayerNorm 1, FFN output,
LayerNorm 2) come from forward hooks on the layer's submodules: the model is the stock
``nn.TransformerEncoder``, not a rewrite of it.
"""

from __future__ import annotations

import math
import re

import numpy as np

from torch_impl._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "TransformerPort", "VARIANTS", "block_layers"]

VARIANTS = (None,)
BLOCK_OUTPUTS = ("attention", "ln1", "ffn", "ln2")
_PROJ = ("query", "key", "value")


def block_layers(layers: int) -> list[str]:
    """Return the names of the recorded activations, in forward order (the same in every port)."""
    names = ["embed"]
    for i in range(layers):
        names += [f"block{i}/{k}" for k in BLOCK_OUTPUTS]
    return names + ["pool", "logits"]


def _model_class():
    t = torch()
    nn = t.nn

    class Encoder(nn.Module):
        def __init__(self, vocab, seq, d, heads, ff, layers, classes, eps, activation):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(seq, d)
            # bias=False: no bias in the attention, the FFN or the LayerNorms (the case says why).
            layer = nn.TransformerEncoderLayer(
                d, heads, dim_feedforward=ff, dropout=0.0, activation=activation, layer_norm_eps=eps,
                batch_first=True, norm_first=False, bias=False,
            )
            # enable_nested_tensor only matters for padded batches in inference; off, it also stays quiet.
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = nn.Linear(d, classes)
            self.register_buffer("positions", t.arange(seq), persistent=False)

        def forward(self, tokens):
            h = self.tok(tokens) + self.pos(self.positions)[None]
            self.embedded = h
            h = self.encoder(h)
            self.pooled = h.mean(dim=1)  # Keras GlobalAveragePooling1D: the mean over tokens
            return self.head(self.pooled)

    return Encoder


class TransformerPort:
    def __init__(self, case, dtype, variant=None):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        o = case.option
        self.d, self.heads, self.n_layers = o("d_model"), o("heads"), o("layers")
        Encoder = _model_class()
        self.model = Encoder(o("vocab"), o("seq"), self.d, self.heads, o("ff"), self.n_layers, o("classes"),
                             float(o("ln_epsilon")), o("activation")).to(dtype=torch_dtype(dtype), device=device())
        self.model.train()
        self._acts: dict = {}
        for i, layer in enumerate(self.model.encoder.layers):
            self._hook(layer.self_attn, f"block{i}/attention", first=True)  # MHA returns (output, weights)
            self._hook(layer.norm1, f"block{i}/ln1")
            self._hook(layer.linear2, f"block{i}/ffn")
            self._hook(layer.norm2, f"block{i}/ln2")
        self.names = list(case.params)
        pattern = re.compile("|".join(o("no_decay")))
        self.decayed = {n: pattern.search(n.rsplit("/", 1)[-1]) is None for n in self.names}
        decay, no_decay, seen = [], [], set()
        for n in self.names:
            p, _ = self._tensor(n)
            if id(p) in seen:
                continue
            seen.add(id(p))
            (decay if self.decayed[n] else no_decay).append(p)
        self.betas = (float(o("beta1")), float(o("beta2")))
        self.eps_hat, self.lr = float(o("epsilon")), float(o("lr"))
        self.opt = t.optim.AdamW(
            [{"params": decay, "weight_decay": float(o("weight_decay"))}, {"params": no_decay, "weight_decay": 0.0}],
            lr=self.lr, betas=self.betas, eps=self.eps_hat,
        )
        self.t_step = 0

    def _hook(self, module, name, first=False):
        def hook(_module, _inputs, output):
            self._acts[name] = output[0] if first else output

        module.register_forward_hook(hook)

    # -- canonical (Keras) names and layouts <-> torch tensors -------------------------------------------
    def _tensor(self, name):
        """Return (torch tensor holding ``name``, its layout): None (as is), "linear" ([out, in]),
        "out_kernel" (``out_proj.weight``) or 0/1/2 (the query/key/value third of ``in_proj_weight``)."""
        m = self.model
        if name == "embedding/embeddings":
            return m.tok.weight, None
        if name == "position/embeddings":
            return m.pos.weight, None
        if name.startswith("head/"):
            return (m.head.weight, "linear") if name.endswith("kernel") else (m.head.bias, None)
        # Inside the blocks every tensor is a kernel or a LayerNorm gain (bias=False).
        block, part, _ = name.split("/", 2)
        layer = m.encoder.layers[int(block[len("block"):])]
        if part == "attention":
            proj = name.split("/")[2]
            if proj == "output":
                return layer.self_attn.out_proj.weight, "out_kernel"
            return layer.self_attn.in_proj_weight, _PROJ.index(proj)
        if part in ("ln1", "ln2"):
            return (layer.norm1 if part == "ln1" else layer.norm2).weight, None
        return (layer.linear1 if part == "ffn1" else layer.linear2).weight, "linear"

    def _from_torch(self, name, value):
        """Return a torch tensor (the parameter, its gradient or an Adam slot) as a detached *view* in
        ``name``'s canonical layout: no copy here, the harness copies what a step returns once, at
        its boundary (with 5 M parameters, each copy of a step's tensors is ~100 MB)."""
        _, where = self._tensor(name)
        v = value.detach()
        d, h = self.d, self.heads
        if where is None:
            return v
        if where == "linear":
            return v.T  # [out, in] -> [in, out]
        if where == "out_kernel":
            return v.T.reshape(h, d // h, d)  # [d_out, h*dh] -> [h*dh, d_out] -> [h, dh, d_out] (a view)
        # queries, keys, values in that order: rows [h*dh] of [h*dh, d_in] -> [d_in, h, dh] (a view)
        return v[where * d : (where + 1) * d].reshape(h, d // h, d).permute(2, 0, 1)

    def _to_torch(self, name, arr, target):
        """Write canonical ``arr`` into ``target`` (a torch tensor, in place, no grad)."""
        _, where = self._tensor(name)
        d = self.d
        arr = np.asarray(arr)
        if where is None:
            target.copy_(to_tensor(arr, self.dtype))
        elif where == "linear":
            target.copy_(to_tensor(arr.T, self.dtype))
        elif where == "out_kernel":
            target.copy_(to_tensor(arr.reshape(d, d).T, self.dtype))
        else:  # one third of in_proj_weight
            target[where * d : (where + 1) * d].copy_(to_tensor(arr.reshape(d, d).T, self.dtype))

    # -- the port protocol -------------------------------------------------------------------------
    def parameters(self):
        return {n: to_numpy(self._from_torch(n, self._tensor(n)[0])) for n in self.names}

    def load(self, params):
        with self.t.no_grad():
            for n in self.names:
                self._to_torch(n, params[n], self._tensor(n)[0])

    def _set_eps(self):
        self.t_step += 1
        # epsilon hat: torch's update lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps) equals Keras'
        # lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps_hat) when eps = eps_hat / sqrt(1-b2^t).
        for group in self.opt.param_groups:
            group["eps"] = self.eps_hat / math.sqrt(1.0 - self.betas[1] ** self.t_step)

    def train(self, batch) -> float:
        """Run one training step and record nothing (the user's own loop: ``parity.tools.bench``'s baseline)."""
        F = self.t.nn.functional
        loss = F.cross_entropy(self.model(to_tensor(batch["x"]).long()), to_tensor(batch["y"]).long())
        self.opt.zero_grad()
        loss.backward()
        self._set_eps()
        self.opt.step()
        self._acts.clear()  # the hooks keep the last step's activations alive otherwise
        return loss.item()

    def step(self, batch):
        t, F = self.t, self.t.nn.functional
        tokens = to_tensor(batch["x"]).long()
        labels = to_tensor(batch["y"]).long()
        self._acts.clear()
        logits = self.model(tokens)
        loss = F.cross_entropy(logits, labels)  # mean over the batch, like the Keras loss
        self.opt.zero_grad()
        loss.backward()
        acts = {"embed": self.model.embedded, **self._acts, "pool": self.model.pooled, "logits": logits}
        # Tensors, not numpy copies: the harness copies them once at its boundary, before the next
        # step can change them (the optimizer updates parameters and slots in place).
        out = {
            "forward": {k: acts[k].detach() for k in block_layers(self.n_layers)},
            "loss": {"loss": loss.detach()},
            "gradients": {n: self._from_torch(n, self._tensor(n)[0].grad) for n in self.names},
            "learning_rate": {"lr": np.asarray(self.lr, dtype=self.dtype)},
        }
        self._set_eps()
        self.opt.step()
        out["parameters"] = {n: self._from_torch(n, self._tensor(n)[0]) for n in self.names}
        out["slots"] = self._slots()
        self._acts.clear()
        return out

    def _slots(self):
        slots = {}
        for n in self.names:
            state = self.opt.state[self._tensor(n)[0]]
            slots[f"{n}/m"] = self._from_torch(n, state["exp_avg"])
            slots[f"{n}/v"] = self._from_torch(n, state["exp_avg_sq"])
        return slots

    def settings(self) -> dict:
        return {
            "framework_convention": "torch",
            "optimizer": "torch.optim.AdamW",
            "adam_epsilon": self.eps_hat,
            "adam_epsilon_form": "hat",
            "adam_epsilon_placement": "epsilon-hat via eps = eps_hat / sqrt(1 - beta2^t) each step",
            "weight_decay": float(self.case.option("weight_decay")),
            "weight_decay_excluded": sorted(n for n, on in self.decayed.items() if not on),
            "layernorm_epsilon": float(self.case.option("ln_epsilon")),
            "gelu": "exact",
            "loss_reduction": "mean",
        }


def build(case, dtype, variant=None):
    """Build the torch transformer port."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r} of the torch transformer port")
    return TransformerPort(case, dtype, variant)
