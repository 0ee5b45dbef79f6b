"""The batches of ``parity diff``: the user's data or batches drawn from input shapes, dropout masks and the
shared random-noise draws (numpy only)."""

from __future__ import annotations

import itertools
import re

import numpy as np

from parity.errors import ParityError, PortError
from parity.portkit.program import OWN_MASK

__all__ = ["MASK_PREFIX", "NOISE_BASE", "OWN_MASK", "noise_kind", "draw_batches", "as_batches", "as_array", "add_masks", "add_noise", "cost_of"]


# -- data ---------------------------------------------------------------------------------------------
def draw_batches(specs: dict, steps: int, rng: np.random.Generator, classes: int | None, batch_size: int,
                 ranges: dict | None = None) -> list[dict]:
    """Batches from the input specs: float inputs N(0, 1); integer targets uniform over ``classes``;
    a float target of shape [None, K] named like a label (y, label(s), target(s)) one-hot rows.
    ``ranges``: integer key -> the table size of the embedding lookup it feeds (ids drawn below it;
    None: a lookup of unknown size, so the key cannot be drawn)."""
    ranges = ranges or {}
    out = []
    for _ in range(steps):
        b = {}
        for key, (shape, dtype) in specs.items():
            if shape is None:
                raise ParityError(f"cannot draw batch key {key!r}: its placeholder has no static rank; give 'data' in the reference file")
            shape = tuple(batch_size if s is None else int(s) for s in shape)
            if np.issubdtype(np.dtype(dtype), np.integer) and key in ranges:
                if not ranges[key]:
                    raise ParityError(f"cannot draw integer batch key {key!r}: it feeds an embedding lookup whose table "
                                      "size parity cannot read; give 'data' in the reference file")
                b[key] = rng.integers(0, ranges[key], size=shape).astype(dtype)
            elif np.issubdtype(np.dtype(dtype), np.integer):
                if not classes:
                    raise ParityError(f"cannot draw integer batch key {key!r}: give 'data' in the reference file")
                b[key] = rng.integers(0, classes, size=shape).astype(dtype)
            elif re.fullmatch(r"y|labels?|targets?|y_true|y_", key) and len(shape) == 2:
                b[key] = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
            else:
                b[key] = rng.normal(0.0, 1.0, size=shape)
        out.append(b)
    return out


def as_batches(source, steps: int, where: str) -> list[dict]:
    try:
        it = iter(source() if callable(source) else source)
        batches = list(itertools.islice(it, steps))
    except ParityError:
        raise
    except Exception as exc:
        raise PortError("data", "data()", exc) from exc
    if len(batches) < steps:
        raise ParityError(f"{where}: data gave {len(batches)} batch(es) for {steps} steps (use --steps {len(batches)} or give more)")
    out = []
    for i, b in enumerate(batches):
        if not isinstance(b, dict) or not b:
            raise ParityError(f"{where}: batch {i} is a {type(b).__name__}, not a non-empty dict {{key: array}}")
        out.append({str(k): as_array(v) for k, v in b.items()})
    return out


def as_array(value) -> np.ndarray:
    """A batch value as an array: a sparse one (``tf.SparseTensorValue``, or any object with ``indices``,
    ``values`` and ``dense_shape``) made dense, so both programs are fed the same numbers (a TF1
    ``sparse_placeholder`` is fed from the dense array again)."""
    if all(hasattr(value, a) for a in ("indices", "values", "dense_shape")) and not isinstance(value, np.ndarray):
        indices = np.asarray(value.indices, dtype=np.int64)
        values = np.asarray(value.values)
        dense = np.zeros(tuple(int(d) for d in np.asarray(value.dense_shape)), dtype=values.dtype)
        if indices.size:
            dense[tuple(indices.T)] = values
        return dense
    return np.asarray(value)


MASK_PREFIX = "__dropout_mask__/"

#: the site index where each kind of random draw (not a dropout) starts: a capture adapter numbers its
#: k-th normal draw of a run ``NOISE_BASE["normal"] + k`` (uniform likewise), so both programs' k-th draws
#: of a kind share one key whatever dropouts come between; an ``undriven`` site is a note, not a draw
#: (its name says what and where). The capture adapters hold the same numbers (tf_impl/*/capture/noise.py,
#: torch_impl/capture/noise.py; tests/test_noise_sources.py checks them).
NOISE_BASE = {"normal": 1_000_000, "uniform": 2_000_000, "undriven": 3_000_000}
_NOISE_FLOOR = min(NOISE_BASE.values())


def noise_kind(index: int) -> str | None:
    """``normal``, ``uniform`` or ``undriven`` for a noise site's index; None for a dropout site's."""
    if index < _NOISE_FLOOR:
        return None
    return max((base, kind) for kind, base in NOISE_BASE.items() if index >= base)[1]


def add_masks(ref_sites, port_sites, batches, rng, notes, unpaired: bool = True) -> None:
    """Draw the dropout keep-masks of each step (channel-last, 1 = keep) into the batches: one per pair of
    sites, one for each site without a partner (``unpaired=False``: none, the identity, for a deterministic
    probe); and one draw per paired random-noise site (:func:`add_noise`)."""
    ref_noise = [s for s in ref_sites if noise_kind(s.index)]
    port_noise = [s for s in port_sites if noise_kind(s.index)]
    ref_sites = [s for s in ref_sites if not noise_kind(s.index)]
    port_sites = [s for s in port_sites if not noise_kind(s.index)]
    _add_dropout_masks(ref_sites, port_sites, batches, rng, notes, unpaired)
    add_noise(ref_noise, port_noise, batches, rng, notes)


def add_noise(ref_sites, port_sites, batches, rng, notes) -> None:
    """The reference's random draws are the stream: its k-th standard normal (or U[0, 1)) draw of a step and
    the port's k-th of the same kind get the same numbers when their shapes agree (channel-last; the batch
    dimension follows each batch). Every draw left to its own program is named in a note."""
    port = {s.index: s for s in port_sites}
    ref = {s.index: s for s in ref_sites}
    for label, sites in (("reference", ref_sites), ("port", port_sites)):
        for s in sites:
            if noise_kind(s.index) == "undriven":
                notes.append(f"{label}: not driven: {s.name}")
    n0 = _batch_size(batches[0]) if batches else None
    for index, site in ref.items():
        kind = noise_kind(index)
        if kind == "undriven":
            continue
        other = port.get(index)
        if other is None:
            notes.append(f"not driven: {kind} draw {site.name} (reference) has no {kind} draw to pair with in the port: "
                         "each draws its own; expect a difference from step 0 at the forward outputs after it")
            continue
        a, b = tuple(site.shape_channel_last), tuple(other.shape_channel_last)
        if a != b:
            notes.append(f"not driven: {kind} draw {site.name} {list(a)} (reference) vs {other.name} {list(b)} (port): "
                         "shapes differ, each draws its own; expect a difference from step 0 at the forward outputs after it")
            continue
        for batch in batches:
            shape = a
            if a and n0 is not None and a[0] == n0:  # a per-example draw follows each batch's size
                shape = (_batch_size(batch),) + a[1:]
            draw = rng.standard_normal(shape) if kind == "normal" else rng.random(shape)
            batch[f"{MASK_PREFIX}{index}"] = draw
    for index, site in port.items():
        if index not in ref and noise_kind(index) != "undriven":
            notes.append(f"not driven: {noise_kind(index)} draw {site.name} (port) has no {noise_kind(index)} draw to pair "
                         "with in the reference: it draws its own; expect a difference from step 0 at the forward outputs after it")


#: a paired site whose shape the other side's cannot meet (neither equal nor a channel/element pair) gets no
#: shared mask: each side's mask of its own shape lies at ``OWN_MASK[side] + index``, and each adapter takes
#: the one that fits its site (parity.portkit.program.site_mask)


def _keep(rng, shape, rate: float) -> np.ndarray:
    return (rng.random(shape) < 1.0 - rate).astype(np.float64)


def _add_dropout_masks(ref_sites, port_sites, batches, rng, notes, unpaired: bool = True) -> None:
    """Sites pair by position. A pair shares one mask per step (the reference's rate; the channel side of an
    element/channel pair takes its channels' first positions); a pair whose shapes cannot meet gets one mask
    per side. A site without a partner (one side has more) drops with a mask of its own rate and
    granularity, so its layer acts as in the program (``unpaired=False``: no mask, the identity, for a
    deterministic probe)."""
    n = min(len(ref_sites), len(port_sites))
    if len(ref_sites) != len(port_sites):
        label, extra = ("reference", ref_sites[n:]) if len(ref_sites) > n else ("port", port_sites[n:])
        what = ("each drops with a mask of its own rate and granularity drawn by parity, so the layers after it "
                "differ from step 0, as the programs' do" if unpaired else "the identity in this probe")
        notes.append(f"dropout: the reference has {len(ref_sites)} site(s), the port {len(port_sites)}: the first {n} "
                     f"are paired in order and share parity's masks; without a partner in the other program: "
                     f"{', '.join(f'{s.name} ({label}, rate {s.rate:g}, {_granularity(s)})' for s in extra)}: {what}")
    for i in range(max(len(ref_sites), len(port_sites))):
        if i >= n:
            if unpaired:
                site = (ref_sites if len(ref_sites) > n else port_sites)[i]
                for b in batches:
                    b[f"{MASK_PREFIX}{i}"] = _keep(rng, (_batch_size(b),) + tuple(site.shape_channel_last[1:]), site.rate)
            continue
        site, other = ref_sites[i], port_sites[i]
        ref_shape, port_shape = tuple(site.shape_channel_last[1:]), tuple(other.shape_channel_last[1:])
        if abs(site.rate - other.rate) > 1e-12:
            notes.append(f"dropout site {i}: rate {site.rate:g} in the reference, {other.rate:g} in the port")
        if port_shape != ref_shape and _granularities(ref_shape, port_shape):
            # element vs channel dropout: one mask drives both (the channel side takes the first position's
            # draw of each channel), so the layers differ by what they drop, as the programs do
            words = _granularities(ref_shape, port_shape)
            notes.append(f"dropout site {i}: {site.name} drops {words[0]} {list(site.shape_channel_last)}, {other.name} "
                         f"drops {words[1]} {list(other.shape_channel_last)} (channel-last): a different dropout; both "
                         "driven from one mask, so their outputs differ")
        elif port_shape != ref_shape:
            notes.append(f"dropout site {i}: {site.name} {list(site.shape_channel_last)} vs {other.name} "
                         f"{list(other.shape_channel_last)} (channel-last): no mask given to both: each drops with a "
                         "mask of its own shape and rate drawn by parity, so they differ by chance (compare that "
                         "layer statistically, not element by element)")
            for b in batches:
                for side, s in (("reference", site), ("port", other)):
                    b[f"{MASK_PREFIX}{OWN_MASK[side] + i}"] = _keep(rng, (_batch_size(b),) + tuple(s.shape_channel_last[1:]), s.rate)
            continue
        full = tuple(max(a, b) for a, b in zip(ref_shape, port_shape))
        for b in batches:
            b[f"{MASK_PREFIX}{i}"] = _keep(rng, (_batch_size(b),) + full, site.rate)


def _granularity(site) -> str:
    s = tuple(site.shape_channel_last)
    return "channels" if len(s) >= 3 and all(d == 1 for d in s[1:-1]) else "elements"


def _granularities(a: tuple, b: tuple):
    """("elements", "channels")-like words when two mask shapes differ only where one is 1 (a channel
    or noise-shaped dropout against an element one); None when they do not meet by broadcasting."""
    if len(a) != len(b) or not all(x == y or 1 in (x, y) for x, y in zip(a, b)):
        return None

    def word(s, o):
        return "whole channels" if any(x == 1 and y != 1 for x, y in zip(s, o)) else "single elements"

    return word(a, b), word(b, a)


def _batch_size(batch: dict) -> int:
    sizes = [np.shape(v)[0] for k, v in batch.items() if np.ndim(v) >= 1 and not k.startswith(MASK_PREFIX)]
    return int(sizes[0]) if sizes else 1


def cost_of(mapping, acts: dict, batch: dict):
    from parity.cases.case import Cost

    kernels = [e for e in mapping.params if e.kind in ("dense_kernel", "conv_kernel", "lstm_kernel", "embedding")]
    fan_in = max([int(np.prod(e.shape[:-1])) for e in kernels] or [1])
    n = _batch_size(batch)
    positions = max([int(np.prod(np.shape(v)[:-1])) for v in acts.values() if np.ndim(v) >= 2] or [n])
    return Cost(depth=max(len(kernels), 1), reduction=max(fan_in, positions, n))
