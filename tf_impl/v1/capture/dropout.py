"""Dropout driven with parity's masks: ``tf.nn.dropout`` draws ``random_uniform`` and keeps
``random >= rate``, so the adapter finds each such site on the forward path (:func:`find_dropout`)
and feeds its random tensor with parity's keep mask (1 keeps, 0 drops): the program's own dropout
op then computes ``where(mask, x / keep_prob, 0)``; without a mask it feeds ones and a unit scale
(the identity). :class:`DropoutFeeds` holds the sites' tensors in the graph that runs.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from parity.errors import ParityError

_RANDOM_OPS = ("RandomUniform", "StatelessRandomUniformV2")


def find_dropout(forward) -> list[dict]:
    """Dropout sites: ``GreaterEqual(random_uniform, rate)`` whose random tensor we can feed."""
    sites = []
    for op in forward:
        if op.type != "GreaterEqual":
            continue
        rnd = op.inputs[0]
        src = rnd.op
        for _ in range(4):
            if src.type in _RANDOM_OPS:
                break
            src = src.inputs[0].op if src.inputs else src
        if src.type not in _RANDOM_OPS:
            continue
        out = [c for c in op.outputs[0].consumers() if c.type in ("SelectV2", "Select", "Cast")]
        scope = op.name.rsplit("/", 1)[0] if "/" in op.name else op.name
        shape = tuple(rnd.shape.as_list()) if rnd.shape.rank is not None else None
        scale = None
        if out and out[0].type in ("SelectV2", "Select") and out[0].inputs[1].op.type in ("RealDiv", "Mul"):
            scale = out[0].inputs[1].op.inputs[1].name  # x / keep_prob or x * (1 / keep_prob)
        sites.append({"random": rnd.name, "rate": op.inputs[1].name, "name": scope, "scale": scale,
                      "output": out[0].name if out else None, "shape": shape})
    return sites


def dropout_notes(sites: list[dict]) -> list[str]:
    """A note for each site parity cannot drive (no ``x / keep_prob`` select it knows)."""
    return [f"dropout {site['name']}: its random tensor feeds no x/keep_prob select parity "
            "knows: left to TF's own draw (compare that layer statistically)"
            for site in sites if site["scale"] is None]


class DropoutFeeds:
    """The dropout sites' tensors in the graph that runs, and what the last run saw of them.

    Built while that graph is the default (it adds one ``parity/dropout_shape_{i}`` op per site).
    """

    def __init__(self, sites: list[dict], graph, tf):
        T = graph.get_tensor_by_name
        self.sites = sites
        self.random = [T(s["random"]) for s in sites]
        self.rate = [T(s["rate"]) for s in sites]
        self.scale = [T(s["scale"]) if s["scale"] else None for s in sites]
        self.random_shape = [tf.shape(t, name=f"parity/dropout_shape_{i}") for i, t in enumerate(self.random)]
        self.rates: list = []
        self.last_shapes: dict[int, tuple] = {}

    def read_rates(self, run: Callable) -> None:
        """Each site's rate, ``run(tensor)`` (None for a rate that depends on the batch: read at the first step)."""
        rates = []
        for t in self.rate:
            try:
                rates.append(float(run(t)))
            except Exception:  # a rate that depends on the batch: read at the first step
                rates.append(None)
        self.rates = rates

    def feed(self, feed: dict, masks: Mapping[int, np.ndarray] | None, run: Callable) -> None:
        """Add to ``feed`` each site's mask, or the identity (keep everything, no 1/keep_prob scaling)."""
        masks = masks or {}
        for i, t in enumerate(self.random):
            if i in masks:
                feed[t] = np.asarray(masks[i], dtype=t.dtype.as_numpy_dtype)
            elif self.scale[i] is not None:
                # no mask: the identity (keep everything, no 1/keep_prob scaling)
                shape = self.last_shapes.get(i)
                if shape is None:
                    shape = run(self.random_shape[i], feed)
                feed[t] = np.ones(shape, dtype=t.dtype.as_numpy_dtype)
                scale = self.scale[i]
                feed[scale] = np.ones(scale.shape.as_list() if scale.shape.rank else (), scale.dtype.as_numpy_dtype)

    def add_fetches(self, fetches: dict) -> None:
        """Fetch the sites' shapes and rates with a run (where there are sites)."""
        if self.random:
            fetches["shapes"], fetches["rates"] = self.random_shape, self.rate

    def record(self, got: Mapping) -> None:
        """Keep the shapes and rates a run with :meth:`add_fetches` fetched."""
        if self.random:
            self.last_shapes = {i: tuple(int(d) for d in s) for i, s in enumerate(got["shapes"])}
            self.rates = [float(r) for r in got["rates"]]

    def driven(self, where: str) -> list[tuple]:
        """``(index, name, shape, rate)`` of each site the adapter drives (shapes as the last run saw them)."""
        out = []
        for i, s in enumerate(self.sites):
            if self.scale[i] is None:
                continue
            shape = self.last_shapes.get(i, s["shape"])
            if shape is None or any(d is None for d in shape):
                raise ParityError(f"{where}: dropout {s['name']} has no static shape: call forward() first")
            out.append((i, s["name"], tuple(shape), self.rates[i]))
        return out
