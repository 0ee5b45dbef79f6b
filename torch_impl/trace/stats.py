"""Tensor summaries computed where a torch tensor lives: on a GPU, one small host copy per step.

:func:`summarize_step` returns, for ``{name: tensor}``, the :class:`~parity.trace.summary.Summary`
a summary trace holds (norm, min, max, mean, the :data:`~parity.trace.summary.SAMPLES` sampled
elements, a checksum) without copying the tensors to the host:

* a tensor on the CPU is summarized by :func:`parity.trace.summary.summarize` on a numpy view of
  its memory (no copy): the same summary, bit for bit, as the host path gives;
* a tensor on another device (CUDA) is summarized there with torch ops: min and max in its own
  dtype (exact: they are elements), the sum and the sum of squares in float64 (the host path's
  sums too; the order of the additions differs, so a norm or a mean may differ from the host
  path's in the last bits: relative ~1e-16 for torch's tree reductions, at most ``2 n u`` in the
  worst case, far below any tolerance), the sampled elements gathered at the host path's indices
  (exact). Every tensor's figures are packed into one float64 vector on the device and copied to
  the host once per step (``.cpu()``: one synchronisation, a few hundred bytes a tensor).

The checksum: CRC-32 needs the bytes on the host. A device summary's checksum is a hash of the
tensor's 32-bit words computed on the device (integer sums, wrapping, so the order of the
additions does not matter: identical bytes give the identical hash), stored negative, so it can
never equal a CRC-32 (which is >= 0): two device summaries of identical bytes are "identical"
(:func:`parity.comparison.records.diff_summaries`), a device summary and a host one are compared
by their statistics. The full tensors are copied only where the runner keeps a window (around a
first divergence): that is the boundary's ordinary copy.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from parity.trace.summary import Summary, sample_indices, summarize

from .. import torch

__all__ = ["summarize_step", "summarize_tensor", "device_hash", "HASH_CHUNK"]

#: 32-bit words hashed at a time on the device (int64 temporaries: 16 bytes a word).
HASH_CHUNK = 1 << 24
_MULT = 0x9E3779B1  # odd: the position's weight, 2^32 / golden ratio
_INDEX_CACHE: dict[tuple[int, str], object] = {}


def _indices(size: int, device):
    key = (size, str(device))
    idx = _INDEX_CACHE.get(key)
    if idx is None:
        if len(_INDEX_CACHE) > 4096:
            _INDEX_CACHE.clear()
        idx = _INDEX_CACHE[key] = torch().as_tensor(sample_indices(size), device=device)
    return idx


def _words(flat):
    """The tensor's bytes as int32 words (uint8 bytes where its size is not a multiple of 4)."""
    t = torch()
    if flat.dtype == t.bool:
        flat = flat.to(t.uint8)
    raw = flat.view(t.uint8)
    return raw.view(t.int32) if raw.numel() % 4 == 0 else raw


def device_hash(flat):
    """A 0-d int64 tensor on ``flat``'s device: ``sum_i w_i * (i * MULT + 1)`` over its 32-bit words ``w_i``,
    mod 2^31 (integer arithmetic wraps: the same for any order of additions)."""
    t = torch()
    words = _words(flat.contiguous().reshape(-1))
    total = t.zeros((), dtype=t.int64, device=flat.device)
    for start in range(0, words.numel(), HASH_CHUNK):
        w = words[start : start + HASH_CHUNK].to(t.int64) & 0xFFFFFFFF
        pos = t.arange(start, start + w.numel(), dtype=t.int64, device=flat.device)
        total = total + (w * ((pos * _MULT + 1) & 0x7FFFFFFF)).sum()
    return total & 0x7FFFFFFF


def _figures(x):
    """[sum, sum of squares, min, max, samples..., hash] of one non-empty tensor, float64, on its device."""
    t = torch()
    flat = x.detach().reshape(-1)
    f64 = flat.to(t.float64)
    head = t.stack([f64.sum(), (f64 * f64).sum(), flat.min().to(t.float64), flat.max().to(t.float64)])
    samples = flat[_indices(flat.numel(), flat.device)].to(t.float64)
    return t.cat([head, samples, device_hash(flat).to(t.float64).reshape(1)])


def summarize_tensor(x, *, on_device: bool | None = None) -> Summary:
    """One tensor's summary (see :func:`summarize_step`)."""
    return summarize_step({"x": x}, on_device=on_device)["x"]


def summarize_step(tensors: Mapping[str, object], *, on_device: bool | None = None) -> dict[str, Summary]:
    """Summaries of ``{name: tensor}``; tensors off the CPU are summarized on their device, one host copy in all.

    ``on_device``: None (the default) takes the device path for tensors off the CPU only; True takes it for
    CPU tensors too (the tests compare it with the host path there); False never (every tensor copied).
    """
    t = torch()
    out: dict[str, Summary] = {}
    pending: dict[object, list] = {}
    for name, x in tensors.items():
        x = x.detach() if hasattr(x, "detach") else t.as_tensor(np.asarray(x))
        device_path = on_device if on_device is not None else x.device.type != "cpu"
        if not device_path:
            cpu = x.cpu()
            out[name] = summarize(cpu.numpy() if cpu.is_contiguous() else cpu.contiguous().numpy())
            continue
        shape, dtype = tuple(x.shape), str(x.dtype).replace("torch.", "")
        if x.numel() == 0:
            out[name] = summarize(np.zeros(shape, dtype=dtype))
            continue
        pending.setdefault(x.device, []).append((name, shape, dtype, x.numel(), _figures(x)))
    for _device, items in pending.items():
        host = t.cat([f for *_, f in items]).cpu().numpy()  # the one host copy (per device)
        pos = 0
        for name, shape, dtype, n, figures in items:
            k = 4 + len(sample_indices(n))
            v = host[pos : pos + k + 1]
            pos += k + 1
            with np.errstate(all="ignore"):
                stats = np.array([math.sqrt(v[1]) if v[1] >= 0 else math.nan, v[2], v[3], v[0] / n])
            samples = np.array(v[4:k], dtype=np.float64)
            stats.flags.writeable = samples.flags.writeable = False
            out[name] = Summary(shape, dtype, stats, samples, -1 - int(v[k]))
    return {name: out[name] for name in tensors}

