"""Seed 000 in PyTorch: nn.Linear layers, loss on element [0, 0], SGD, clip_grad_value_.

``nn.Linear`` keeps its weight ``[out, in]``, TF's kernel is ``[in, out]``: the weights are
transposed at the boundary (``parity.portkit.layout.dense_to_torch``). ``clip_grad_value_`` is
``tf.clip_by_value`` exactly. An equivalent formulation, :class:`Minimize` (no clipping,
TF1's ``opt.minimize``), is in :data:`ALTERNATIVES`.
"""

from __future__ import annotations

from parity.cases.catalog.seed000 import layer_names
from parity.trace.health import summary_dir
from parity.portkit.layout import dense_from_torch, dense_to_torch

from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "EncoderPort", "ALTERNATIVES"]


class EncoderPort:
    def __init__(self, case, dtype):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        hidden = tuple(case.option("hidden", (16,)))
        widths = (1,) + hidden + (1,)
        self.names = layer_names(len(hidden))
        self.layers = t.nn.ModuleList(
            [t.nn.Linear(i, o) for i, o in zip(widths[:-1], widths[1:])]
        ).to(dtype=torch_dtype(dtype), device=device())
        self.lr = case.option("lr", 1e-3)
        self.opt = t.optim.SGD(self.layers.parameters(), lr=self.lr)
        self.clip = case.option("clip_value", 4.5)
        self.summary_dir = summary_dir(case, "torch", dtype)
        self.writer = None

    def _pairs(self):
        for (wn, bn, _), layer in zip(self.names, self.layers):
            yield wn, layer.weight, True
            yield bn, layer.bias, False

    def parameters(self):
        return {n: dense_from_torch(to_numpy(p)) if is_w else to_numpy(p) for n, p, is_w in self._pairs()}

    def load(self, params):
        with self.t.no_grad():
            for n, p, is_w in self._pairs():
                p.copy_(to_tensor(dense_to_torch(params[n]) if is_w else params[n], self.dtype))

    def step(self, batch):
        t = self.t
        x = to_tensor(batch["I"], self.dtype)
        acts = {}
        h = x
        for (_, _, on), layer in zip(self.names, self.layers):
            h = layer(h)
            if on != "O2":
                h = t.relu(h)
            acts[on] = h
        loss = (x[0, 0] - 2.0 * acts["O2"][0, 0]) ** 2
        self.opt.zero_grad()
        loss.backward()
        grads = {n: dense_from_torch(to_numpy(p.grad)) if w else to_numpy(p.grad) for n, p, w in self._pairs()}
        out = {
            "forward": {k: to_numpy(v) for k, v in acts.items()},
            "loss": {"loss": to_numpy(loss)},
            "gradients": grads,
            "learning_rate": {"lr": self.opt.param_groups[0]["lr"]},
        }
        if self.clip is not None:
            t.nn.utils.clip_grad_value_(self.layers.parameters(), self.clip)
            out["processed_gradients"] = {
                n: dense_from_torch(to_numpy(p.grad)) if w else to_numpy(p.grad) for n, p, w in self._pairs()
            }
        self.opt.step()
        out["parameters"] = self.parameters()
        if self.summary_dir:
            self._write_histograms(out["gradients"], out["parameters"])
        return out

    def _write_histograms(self, grads, params):
        # The seed answer's TensorBoard histograms, written with torch's SummaryWriter.
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise RuntimeError(
                    "PARITY_SUMMARY_DIR asks for TensorBoard histograms, and torch's SummaryWriter "
                    "needs the tensorboard package: pip install tensorboard"
                ) from None

            self.writer, self.count = SummaryWriter(self.summary_dir), 0
        for name in params:
            self.writer.add_histogram(name, params[name], self.count)
            self.writer.add_histogram(name + "_grad", grads[name], self.count)
        self.count += 1

    def close(self):
        if self.writer is not None:
            self.writer.close()


class Minimize(EncoderPort):
    """Gradient descent on the raw gradients: TF1's ``opt.minimize`` (equal where the clip does not bite)."""

    def __init__(self, case, dtype):
        super().__init__(case, dtype)
        self.clip = None


#: Equivalent formulations of this port, by name (``build`` hands them out).
ALTERNATIVES = {"minimize": Minimize}


def build(case, dtype, variant=None):
    """Build the torch encoder port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return EncoderPort(case, dtype)
