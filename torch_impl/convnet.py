"""Seed 001 in PyTorch: the MNIST convnet as an ``nn.Module``, ``torch.optim.Adam``.

What a faithful port of the TF1 seed has to do (PITFALLS P09, P22-P25):

* weights: conv ``HWIO -> OIHW``, dense ``[in, out] -> [out, in]``, and the first dense
  kernel's rows reordered from TF's (h, w, c) flatten order to torch's (c, h, w)
  (:func:`parity.portkit.layout.flatten_rows_to_torch`); activations are reported in NHWC;
* SAME padding: explicit ``F.pad`` with :func:`parity.portkit.layout.same_padding` (asymmetric
  when the stride is 2 and the size even: ``padding=k//2`` would be wrong), and max-pool
  padding with -inf (TF ignores padded cells);
* dropout: the harness's keep-mask applied as ``x * mask / keep_prob``; without masks,
  ``nn.Dropout(p=1 - keep_prob)`` (torch's p is the *drop* probability);
* Adam: TF1 adds epsilon to sqrt of the *uncorrected* v ("epsilon hat"), torch to the
  bias-corrected sqrt. Setting the group's ``eps`` to ``eps_hat / sqrt(1 - beta2^t)``
  before each step makes torch's update ``lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps_hat)``,
  TF1's exactly (:data:`ADAM_EPS_HAT`).

The deliberately wrong versions of this port (no flatten permutation, ``padding=k//2``,
``nn.Dropout(p=keep_prob)``, torch's own epsilon placement) live in
``torch_impl/mistakes/convnet.py``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from parity.portkit.layout import conv_from_torch, conv_to_torch, dense_from_torch, dense_from_torch_flattened, dense_to_torch, flatten_rows_to_torch, nchw_to_nhwc, same_padding

from parity.portkit.variants import build_variant
from torch_impl._common import device, framework_info, to_numpy, to_numpy_as, to_tensor, torch, torch_dtype

__all__ = ["build", "framework_info", "ConvnetPort", "native_dropout", "ADAM_EPS_HAT"]

#: The port mirrors TF1's epsilon-hat by rescaling torch's eps every step.
ADAM_EPS_HAT = True
LAYERS = ("conv1", "pool1", "conv2", "pool2", "fc1", "fc1_drop", "logits")


@functools.lru_cache(maxsize=None)
def _module_class():
    t = torch()
    nn, F = t.nn, t.nn.functional

    class ConvNet(nn.Module):
        """The seed's network, NCHW, with TF's SAME padding written out."""

        def __init__(self, image, stride, dense_in, units, classes, keep_prob):
            super().__init__()
            h, w, c = image
            self.image, self.stride = image, stride
            # padding=0: TF's SAME is padded explicitly in _conv (it can be asymmetric).
            self.conv1 = nn.Conv2d(c, 32, 5, stride=stride, padding=0)
            self.conv2 = nn.Conv2d(32, 64, 5, padding=0)
            self.fc1 = nn.Linear(dense_in, units)
            self.out = nn.Linear(units, classes)
            # torch's p is the probability to *drop* a unit; TF1's keep_prob the one to keep it.
            self.dropout = nn.Dropout(p=1.0 - keep_prob)
            self.keep_prob = keep_prob

        @staticmethod
        def _same(x, k, s, value=0.0):
            # TF SAME: the odd pixel of padding goes after (bottom/right).
            top, bottom = same_padding(x.shape[2], k, s)
            left, right = same_padding(x.shape[3], k, s)
            return F.pad(x, (left, right, top, bottom), value=value)

        def _conv(self, conv, x):
            return F.relu(conv(self._same(x, conv.kernel_size[0], conv.stride[0])))

        def _pool(self, x):
            # Padded cells must never win the max: pad with -inf, as TF ignores them.
            return F.max_pool2d(self._same(x, 2, 2, value=-math.inf), 2, 2)

        def forward(self, x, mask=None):
            h, w, c = self.image
            acts = {}
            x = x.reshape(-1, h, w, c).permute(0, 3, 1, 2)  # the seed feeds flat NHWC rows
            acts["conv1"] = self._conv(self.conv1, x)
            acts["pool1"] = self._pool(acts["conv1"])
            acts["conv2"] = self._conv(self.conv2, acts["pool1"])
            acts["pool2"] = self._pool(acts["conv2"])
            acts["fc1"] = F.relu(self.fc1(t.flatten(acts["pool2"], 1)))
            if mask is not None:
                acts["fc1_drop"] = acts["fc1"] * mask / self.keep_prob
            else:
                acts["fc1_drop"] = self.dropout(acts["fc1"])
            acts["logits"] = self.out(acts["fc1_drop"])
            return acts

    return ConvNet


class ConvnetPort:
    def __init__(self, case, dtype):
        t = torch()
        self.t, self.case, self.dtype = t, case, dtype
        image = tuple(case.option("image", (28, 28, 1)))
        stride = int(case.option("conv1_stride", 1))
        shapes = {n: spec.shape for n, spec in case.params.items()}
        self.dense_in, units = shapes["wd1"]
        classes = shapes["out_b"][0]
        self.keep_prob = float(case.option("keep_prob", 0.75))
        self.model = self._model_class()(image, stride, self.dense_in, units, classes, self.keep_prob)
        self.model.to(dtype=torch_dtype(dtype), device=device()).train()
        side = int(round(math.sqrt(self.dense_in // 64)))
        self.flat_hwc = (side, side, 64)
        m = self.model
        # canonical name -> (parameter, to_torch, from_torch)
        ident = (lambda a: a, lambda a: a)
        self.params = {
            "wc1": (m.conv1.weight, conv_to_torch, conv_from_torch),
            "bc1": (m.conv1.bias, *ident),
            "wc2": (m.conv2.weight, conv_to_torch, conv_from_torch),
            "bc2": (m.conv2.bias, *ident),
            "wd1": (m.fc1.weight, *self._fc1_layout()),
            "bd1": (m.fc1.bias, *ident),
            "out_w": (m.out.weight, dense_to_torch, dense_from_torch),
            "out_b": (m.out.bias, *ident),
        }
        self.lr = float(case.option("lr"))
        self.betas = (float(case.option("beta1")), float(case.option("beta2")))
        self.eps_hat = float(case.option("epsilon"))
        self.opt = t.optim.Adam(m.parameters(), lr=self.lr, betas=self.betas, eps=self.eps_hat)
        self.t_step = 0

    def _model_class(self):
        return _module_class()

    def _fc1_layout(self):
        """Return fc1's kernel conversions (to torch, from torch).

        TF flattens NHWC in (h, w, c) order, torch NCHW in (c, h, w): the first dense
        kernel's rows are permuted, besides the ``[in, out] -> [out, in]`` transpose.
        """
        return (
            lambda k: dense_to_torch(flatten_rows_to_torch(k, *self.flat_hwc)),
            lambda w: dense_from_torch_flattened(w, *self.flat_hwc),  # transposed, rows back to (h, w, c)
        )

    def _epsilon_hat(self):
        """Set torch's eps so that its update is TF1's: eps on sqrt of the *uncorrected* v."""
        beta2 = self.betas[1]
        for group in self.opt.param_groups:
            group["eps"] = self.eps_hat / math.sqrt(1.0 - beta2**self.t_step)

    def _canonical(self, tensors):
        return {n: to_numpy_as(tensors[n], back) for n, (_, _, back) in self.params.items()}

    def parameters(self):
        return self._canonical({n: p for n, (p, _, _) in self.params.items()})

    def load(self, params):
        with self.t.no_grad():
            for n, (p, to_torch, _) in self.params.items():
                p.copy_(to_tensor(to_torch(params[n]), self.dtype))

    def step(self, batch):
        t = self.t
        x = to_tensor(batch["x"], self.dtype)
        y = to_tensor(batch["y"], self.dtype)
        mask = to_tensor(batch["keep_mask"], self.dtype) if "keep_mask" in batch else None
        acts = self.model(x, mask)
        # Probability targets (one-hot rows), mean over the batch: TF's reduce_mean of
        # softmax_cross_entropy_with_logits.
        loss = t.nn.functional.cross_entropy(acts["logits"], y)
        self.opt.zero_grad()
        loss.backward()
        out = {
            "forward": {k: to_numpy_as(v, nchw_to_nhwc) if v.dim() == 4 else to_numpy(v) for k, v in acts.items()},
            "loss": {"loss": to_numpy(loss)},
            "gradients": self._canonical({n: p.grad for n, (p, _, _) in self.params.items()}),
            "learning_rate": {"lr": np.asarray(self.opt.param_groups[0]["lr"], dtype=self.dtype)},
        }
        self.t_step += 1
        self._epsilon_hat()
        self.opt.step()
        out["parameters"] = self.parameters()
        out["slots"] = self._slots()
        return out

    def _slots(self):
        slots = {}
        for n, (p, _, back) in self.params.items():
            state = self.opt.state[p]
            slots[f"{n}/m"] = to_numpy_as(state["exp_avg"], back)
            slots[f"{n}/v"] = to_numpy_as(state["exp_avg_sq"], back)
        # TF1's accumulators after the update: beta^(t+1), the powers the next step uses.
        step = int(self.opt.state[self.params["wc1"][0]]["step"])
        slots["beta1_power"] = np.asarray(self.betas[0] ** (step + 1), dtype=self.dtype)
        slots["beta2_power"] = np.asarray(self.betas[1] ** (step + 1), dtype=self.dtype)
        return slots

    def settings(self) -> dict:
        return {
            "optimizer": "torch.optim.Adam",
            "adam_epsilon": self.eps_hat,
            "adam_epsilon_placement": "epsilon-hat via eps = eps_hat / sqrt(1 - beta2^t) each step",
            "dropout": f"nn.Dropout(p={self.model.dropout.p})",
            "keep_prob": self.keep_prob,
            "padding": "F.pad(parity.portkit.layout.same_padding)",
        }


def native_dropout(x: np.ndarray, keep_prob: float, *, seed: int = 0) -> np.ndarray:
    """Apply the port's own ``nn.Dropout(p=1 - keep_prob)`` (training mode) to ``x``."""
    return _dropout(x, 1.0 - keep_prob, seed)


def _dropout(x: np.ndarray, p: float, seed: int) -> np.ndarray:
    t = torch()
    gen_state = t.random.get_rng_state()
    try:
        t.manual_seed(seed)
        layer = t.nn.Dropout(p=p).train()
        return to_numpy(layer(t.from_numpy(np.array(x, copy=True))))
    finally:
        t.random.set_rng_state(gen_state)


def build(case, dtype, variant=None):
    """Build the torch convnet port of ``case`` in ``dtype``."""
    if variant:
        return build_variant(__name__, variant, case, dtype)
    return ConvnetPort(case, dtype)
