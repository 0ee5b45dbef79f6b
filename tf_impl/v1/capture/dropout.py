"""Dropout driven with parity's masks: ``tf.nn.dropout`` draws ``random_uniform`` and keeps
``random >= rate``, so the adapter finds each such site on the forward path (:func:`find_dropout`)
and feeds its random tensor with parity's keep mask (1 keeps, 0 drops): the program's own dropout
op then computes ``where(mask, x / keep_prob, 0)``; without a mask it feeds ones and a unit scale
(the identity: a deterministic probe; a training step gives every site a mask, one without a partner in
the other program its own). Whatever gives the rate (a constant ``keep_prob``, ``rate=``, ``1.0 - in_drop`` of a
fed placeholder), the op is the same. A hand-written dropout, ``floor(keep_prob + random_uniform)``
(the sparse dropout of graph networks), is driven at its ``Floor``: parity feeds the floor's output
with its mask (without a mask: ``keep_prob`` everywhere, so ``x * mask / keep_prob`` is the identity;
where the mask becomes a boolean, ``tf.sparse_retain``, everything is kept and the ``1 / keep_prob``
scale stays, as a note says). :class:`DropoutFeeds` holds the sites' tensors in the graph that runs, and
the other normal / uniform draws (:mod:`.noise`), fed with parity's draw for their site.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from parity.errors import ParityError
from parity.portkit.program import fit_mask, OWN_MASK, site_mask

from .noise import NOISE_BASE, find_noise, noise_notes


_RANDOM_OPS = ("RandomUniform", "StatelessRandomUniformV2")


def _from_random(t, depth: int = 4) -> bool:
    """Whether tensor ``t`` is a random draw (``RandomUniform`` a few ops above it: scaled, shifted)."""
    level = [t.op]
    for _ in range(depth):
        if any(op.type in _RANDOM_OPS for op in level):
            return True
        level = [i.op for op in level for i in op.inputs]
    return any(op.type in _RANDOM_OPS for op in level)


def _in_while_loop(op) -> bool:
    ctx = op._get_control_flow_context()
    while ctx is not None:
        if ctx.IsWhileContext():
            return True
        ctx = ctx.outer_context
    return False


def _floor_site(op) -> dict | None:
    """A hand-written dropout ``floor(keep_prob + random_uniform)``: its site, or None."""
    add = op.inputs[0].op
    if add.type not in ("Add", "AddV2"):
        return None
    rnd = [t for t in add.inputs if _from_random(t)]
    keep = [t for t in add.inputs if not _from_random(t)]
    if len(rnd) != 1 or len(keep) != 1:
        return None
    out = op.outputs[0]
    shape = tuple(out.shape.as_list()) if out.shape.rank is not None else None
    scope = op.name  # "gc1/Floor": the scope alone may be the whole layer's
    as_bool = any(c.type == "Cast" and c.get_attr("DstT").name == "bool" for c in out.consumers())
    # the layer output: x * mask, and the 1 / keep_prob scale that follows it
    output = None
    muls = [c for c in out.consumers() if c.type == "Mul"]
    if len(muls) == 1:
        output = muls[0]
        nxt = [c for c in output.outputs[0].consumers() if c.type in ("RealDiv", "Mul")]
        output = (nxt[0] if len(nxt) == 1 else output).name
    return {"random": out.name, "rate": keep[0].name, "name": scope, "scale": None, "form": "floor",
            "output": output, "shape": shape, "boolean": as_bool}


class Sites(list):
    """The dropout sites (a list of dicts), and ``noise``: the random draws that are not a dropout's."""

    noise: list = []


def find_dropout(forward) -> list[dict]:
    """Dropout sites: ``GreaterEqual(random_uniform, rate)`` whose random tensor we can feed, and the
    hand-written ``floor(keep_prob + random_uniform)``, in graph order. A dropout of a tensor of static
    shape draws from a constant shape, so its draw is not downstream of the inputs: the ops two steps
    above the forward path are searched too. The list's ``noise`` holds the other random draws
    (:func:`.noise.find_noise`)."""
    seen, ops = set(), []
    for op in forward:
        for cand in [i.op for i in op.inputs] + [j.op for i in op.inputs for j in i.op.inputs] + [op]:
            if cand not in seen and cand.type in ("Floor", "GreaterEqual"):
                seen.add(cand)
                ops.append(cand)
    order = {op: i for i, op in enumerate(forward[0].graph.get_operations())} if forward else {}
    sites = Sites()
    sites.noise = find_noise(forward, ops, _in_while_loop)  # the other random draws (:mod:`.noise`)
    for op in sorted(ops, key=order.get):
        if _in_while_loop(op):  # (a DropoutWrapper inside dynamic_rnn): a tensor in a loop cannot be fed
            scope = op.name.rsplit("/", 1)[0]
            if not any(s["name"] == scope for s in sites):
                sites.append({"random": None, "rate": None, "name": scope, "scale": None, "form": "loop",
                              "output": None, "shape": None})
            continue
        if op.type == "Floor":
            site = _floor_site(op)
            if site is not None:
                sites.append(site)
            continue
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
        sites.append({"random": rnd.name, "rate": op.inputs[1].name, "name": scope, "scale": scale, "form": "select",
                      "output": out[0].name if out else None, "shape": shape})
    return sites


def dropout_notes(sites: list[dict]) -> list[str]:
    """A note for each site parity cannot drive (no ``x / keep_prob`` select it knows)."""
    notes = [f"dropout {site['name']}: its random tensor feeds no x/keep_prob select parity "
             "knows: left to TF's own draw (that layer and what follows differ by chance: compare them "
             "statistically, not element by element)"
             for site in sites if site.get("form") == "select" and site["scale"] is None]
    notes += [f"dropout {site['name']}: inside a tf.while_loop (a DropoutWrapper in dynamic_rnn), where parity cannot "
              "feed its draw: left to TF's own (that layer and what follows differ by chance: compare them "
              "statistically, not element by element)" for site in sites if site.get("form") == "loop"]
    notes += noise_notes(getattr(sites, "noise", []))
    notes += [f"dropout {site['name']} (hand-written, floor(keep_prob + random_uniform) made boolean): driven "
              "with parity's masks; without a mask it keeps everything but its 1/keep_prob scale stays"
              for site in sites if site.get("form") == "floor" and site.get("boolean")]
    return notes


def _driven(site: dict, scale) -> bool:
    return site.get("form") == "floor" or scale is not None


class DropoutFeeds:
    """The dropout sites' tensors in the graph that runs, and what the last run saw of them.

    Built while that graph is the default (it adds one ``parity/dropout_shape_{i}`` op per site).
    """

    def __init__(self, sites: list[dict], graph, tf):
        T = graph.get_tensor_by_name
        all_sites = sites
        # only the sites parity drives: their positions are the mask indices (a note names the others)
        sites = [s for s in sites if s["random"] and _driven(s, s["scale"])]
        self.sites = sites
        self.random = [T(s["random"]) for s in sites]
        self.rate = [T(s["rate"]) for s in sites]
        self.scale = [T(s["scale"]) if s["scale"] else None for s in sites]
        self.random_shape = [tf.shape(t, name=f"parity/dropout_shape_{i}") for i, t in enumerate(self.random)]
        self.rates: list = []
        self.last_shapes: dict[int, tuple] = {}
        # the normal / uniform draws parity drives: (index, site), each fed with parity's draw when given
        counts: dict[str, int] = {}
        self.noise = []
        for n in getattr(all_sites, "noise", []):
            if n["kind"] in ("normal", "uniform"):
                k = counts[n["kind"]] = counts.get(n["kind"], -1) + 1
                self.noise.append((NOISE_BASE[n["kind"]] + k, n))
        self.noise_random = [T(n["random"]) for _, n in self.noise]
        self.noise_shape = [tf.shape(t, name=f"parity/noise_shape_{i}") for i, t in enumerate(self.noise_random)]
        self.noise_shapes: dict[int, tuple] = {}

    def read_rates(self, run: Callable) -> None:
        """Each site's rate, ``run(tensor)`` (None for a rate that depends on the batch: read at the first step)."""
        rates = []
        for t in self.rate:
            try:
                rates.append(float(run(t)))
            except Exception:  # a rate that depends on the batch: read at the first step
                rates.append(None)
        self.rates = [self._rate(i, r) for i, r in enumerate(rates)]

    def _rate(self, i: int, value):
        """The dropout rate from what site ``i``'s rate tensor holds (a hand-written one holds keep_prob)."""
        if value is None:
            return None
        return 1.0 - float(value) if self.sites[i].get("form") == "floor" else float(value)

    def feed(self, feed: dict, masks: Mapping[int, np.ndarray] | None, run: Callable) -> None:
        """Add to ``feed`` each site's mask, or the identity (keep everything, no 1/keep_prob scaling)."""
        masks = masks or {}
        for (index, _), t in zip(self.noise, self.noise_random):  # a noise draw: fed when parity gives one
            if index in masks and t.shape.is_compatible_with(np.shape(masks[index])):  # (else: TF's own draw)
                feed[t] = np.asarray(masks[index]).astype(t.dtype.as_numpy_dtype)
        for i, t in enumerate(self.random):
            if i in masks or any(b + i in masks for b in OWN_MASK.values()):
                shape = self.last_shapes.get(i)
                if shape is None:
                    shape = tuple(run(self.random_shape[i], feed))
                first = masks.get(i, next((masks[b + i] for b in OWN_MASK.values() if b + i in masks), None))
                shape = (np.shape(first)[0],) + tuple(shape[1:]) if len(shape) == np.ndim(first) else tuple(shape)
                feed[t] = fit_mask(site_mask(masks, i, shape), tuple(shape)).astype(t.dtype.as_numpy_dtype)
            elif self.sites[i].get("form") == "floor":
                # no mask: keep_prob everywhere (x * keep / keep: the identity); a boolean mask keeps all
                shape = self.last_shapes.get(i)
                if shape is None:
                    shape = run(self.random_shape[i], feed)
                value = 1.0 if self.sites[i].get("boolean") else float(run(self.rate[i], feed))
                feed[t] = np.full(shape, value, dtype=t.dtype.as_numpy_dtype)
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
        if self.noise:
            fetches["noise_shapes"] = self.noise_shape

    def record(self, got: Mapping) -> None:
        """Keep the shapes and rates a run with :meth:`add_fetches` fetched."""
        if self.random:
            self.last_shapes = {i: tuple(int(d) for d in s) for i, s in enumerate(got["shapes"])}
            self.rates = [self._rate(i, r) for i, r in enumerate(got["rates"])]
        if self.noise:
            self.noise_shapes = {i: tuple(int(d) for d in s) for i, s in enumerate(got["noise_shapes"])}

    def driven(self, where: str) -> list[tuple]:
        """``(index, name, shape, rate)`` of each site the adapter drives (shapes as the last run saw them)."""
        out = []
        for i, s in enumerate(self.sites):
            if not _driven(s, self.scale[i]):
                continue
            shape = self.last_shapes.get(i, s["shape"])
            if shape is None or any(d is None for d in shape):
                raise ParityError(f"{where}: dropout {s['name']} has no static shape: call forward() first")
            out.append((i, s["name"], tuple(shape), self.rates[i]))
        for j, (index, n) in enumerate(self.noise):  # the noise draws (rate 0; the index says the kind)
            shape = self.noise_shapes.get(j, n["shape"])
            if shape is None or any(d is None for d in shape):
                raise ParityError(f"{where}: random draw {n['name']} has no static shape: call forward() first")
            out.append((index, n["name"], tuple(shape), 0.0))
        return out
