"""Tensor summaries: what a summary-mode trace keeps of a tensor instead of its elements.

A :class:`Summary` holds the shape and dtype, the L2 norm, min, max, mean, the elements at
:data:`SAMPLES` fixed indices (the same indices for every tensor of that size, so two runs
sample the same elements) and a CRC-32 checksum of the raw bytes.

Comparing a summary with a summary (or with a full tensor, summarized first) gives a *lower
bound* of the true largest elementwise difference ``max|a - b|``: min, max and mean move by
at most ``max|a - b|``, a sampled element is an elementwise difference, and
``| ||a|| - ||b|| | <= ||a - b||_2 <= sqrt(n) max|a - b|``, so the norm's difference divided
by ``sqrt(n)`` is one too. A summary comparison therefore never reports more than the full
comparison would (no false alarm of its own); it can miss a difference that moves none of
the statistics (the checksum then still tells "identical bytes" from "different").
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["Summary", "summarize", "sample_indices", "SAMPLES", "STATS"]

#: Elements sampled per tensor: 8 evenly spaced (first and last included) and 8 drawn
#: from a generator seeded with the tensor's size.
SAMPLES = 16
#: The statistics, in the order they are stored.
STATS = ("norm", "min", "max", "mean")


def sample_indices(size: int) -> np.ndarray:
    """Return the flat indices sampled from a tensor of ``size`` elements (sorted, unique)."""
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    even = np.linspace(0, size - 1, num=min(size, SAMPLES // 2)).round().astype(np.int64)
    drawn = np.random.default_rng(size).integers(0, size, size=SAMPLES // 2)
    return np.unique(np.concatenate([even, drawn]))


@dataclass(frozen=True)
class Summary:
    """The statistics of one tensor (see the module docstring)."""

    shape: tuple[int, ...]
    dtype: str
    stats: np.ndarray  # float64 [norm, min, max, mean]
    samples: np.ndarray  # float64 values at sample_indices(size)
    checksum: int

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def scale(self) -> float:
        """The largest magnitude (max of |min|, |max|), NaN-free where the tensor was."""
        return float(np.max(np.abs(self.stats[1:3]))) if self.size else 0.0

    def encode(self) -> np.ndarray:
        """Return the float64 vector stored in a trace file: stats then samples."""
        return np.concatenate([self.stats, self.samples])

    @classmethod
    def decode(cls, vector: np.ndarray, shape, dtype: str, checksum: int) -> "Summary":
        vector = np.asarray(vector, dtype=np.float64)
        n = len(STATS)
        return cls(tuple(int(s) for s in shape), str(dtype), vector[:n].copy(), vector[n:].copy(), int(checksum))


def summarize(x) -> Summary:
    """Summarize an array (a :class:`Summary` is returned as it is)."""
    if isinstance(x, Summary):
        return x
    arr = np.asarray(x)
    flat = (arr if arr.flags.c_contiguous else arr.copy(order="C")).reshape(-1)
    checksum = zlib.crc32(flat.view(np.uint8).data if flat.size else b"")
    f = flat.astype(np.float64, copy=False)
    if f.size:
        with np.errstate(all="ignore"):
            stats = np.array([np.sqrt(np.dot(f, f)), f.min(), f.max(), f.mean()])
        samples = f[sample_indices(f.size)]
    else:
        stats, samples = np.zeros(len(STATS)), np.zeros(0)
    return Summary(tuple(arr.shape), str(arr.dtype), stats, np.array(samples, dtype=np.float64), checksum)
