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

Cost: a summary reads the tensor in place, with no float64 copy of it. min and max are
taken in the tensor's own dtype (exact: they are elements); the sum and the sum of squares
are accumulated in float64 over chunks of :data:`CHUNK` elements (a float32 tensor's chunk
converted into a reused buffer that stays in cache), so a norm and a mean carry float64
rounding only: they differ from the whole-array float64 sums of format 2's first writers
by the order of the additions (relative ~1e-16, far below any tolerance). The CRC-32 is
zlib's polynomial, computed by ISA-L (the ``isal`` package, ~20x zlib's speed) where it is
installed and by :func:`zlib.crc32` otherwise: the same number either way, so trace files
do not change (format 2 as it was). The sampled indices are computed once per tensor size.
Measured on the real-size transformer's float32 step (103 MB, 320 tensors, read from
memory): ~0.35 ns a byte, 30-55 ms a step against 420-490 ms converting to float64 first.
"""

from __future__ import annotations

import math
import threading
import weakref
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

try:  # ISA-L's CRC-32: the same value as zlib.crc32, ~20x faster (an optional speed-up)
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a base dependency; zlib gives the same numbers
    _crc32 = zlib.crc32

__all__ = [
    "Summary", "summarize", "norm_mean", "sample_indices", "moments", "float64_chunks", "sum_of_squares", "scratch", "crc32",
    "SAMPLES", "STATS", "CHUNK", "MEMO_MIN",
]

#: Elements sampled per tensor: 8 evenly spaced (first and last included) and 8 drawn
#: from a generator seeded with the tensor's size.
SAMPLES = 16
#: The statistics, in the order they are stored.
STATS = ("norm", "min", "max", "mean")
#: Elements read at a time: a 256 KB float64 buffer stays in cache. Squares are summed
#: with numpy's own reductions, not ``np.dot``: OpenBLAS threads ``ddot`` above 10000
#: elements, and its threads spin against torch's and TensorFlow's on a loaded machine
#: (measured: 100 ms instead of 2 for a float32 megabyte's sum of squares after a torch matmul).
CHUNK = 1 << 15


def sample_indices(size: int) -> np.ndarray:
    """Return the flat indices sampled from a tensor of ``size`` elements (sorted, unique; read-only)."""
    return _sample_indices(int(size))


@lru_cache(maxsize=4096)
def _sample_indices(size: int) -> np.ndarray:
    if size <= 0:
        out = np.zeros(0, dtype=np.int64)
    else:
        even = np.linspace(0, size - 1, num=min(size, SAMPLES // 2)).round().astype(np.int64)
        drawn = np.random.default_rng(size).integers(0, size, size=SAMPLES // 2)
        out = np.unique(np.concatenate([even, drawn]))
    out.flags.writeable = False  # shared by every tensor of this size
    return out


def crc32(flat: np.ndarray) -> int:
    """CRC-32 (zlib's) of a C-contiguous array's raw bytes."""
    return _crc32(flat.view(np.uint8).data) if flat.size else 0


def moments(flat: np.ndarray) -> tuple[float, float, float, float]:
    """Return (sum, sum of squares, min, max) of a 1-D contiguous array, sums accumulated in float64.

    The array is read :data:`CHUNK` elements at a time (:func:`float64_chunks`: a float64
    array in place, any other dtype converted into one reused float64 buffer; never a
    float64 copy of the whole tensor). NaN propagates to every figure, as in numpy's own
    reductions.
    """
    if flat.size == 0:
        return 0.0, 0.0, math.nan, math.nan
    with np.errstate(all="ignore"):
        lo, hi = float(flat.min()), float(flat.max())
        total = squares = 0.0
        for (b,) in float64_chunks(flat):
            total += float(b.sum())
            squares += sum_of_squares(b)
    return total, squares, lo, hi


def norm_mean(x, remember: bool = True) -> tuple[float, float]:
    """(L2 norm, mean) of an array as :func:`summarize` computes them (the same float64 chunk sums, bit for
    bit), without its checksum, extremes and samples: what the health series read of every gradient and
    parameter. A :class:`Summary` gives its own; with ``remember``, an array of :data:`MEMO_MIN` elements or
    more is summarized (remembered: a summary run's comparison then reads the same summary; without, the
    checksum, extremes and samples nobody reads cost ~0.5x the sums again, ~2x for a large float64 array)."""
    if isinstance(x, Summary):
        return float(x.stats[0]), float(x.stats[3])
    arr = np.asarray(x)
    if arr.size == 0:
        return 0.0, 0.0
    if remember and arr.size >= MEMO_MIN:  # summarized once, remembered: a summary run's comparison reads the same one
        s = summarize(x)
        return float(s.stats[0]), float(s.stats[3])
    flat = (arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)).reshape(-1)
    total = squares = 0.0
    with np.errstate(all="ignore"):
        for (b,) in float64_chunks(flat):
            total += float(b.sum())
            squares += sum_of_squares(b)
        return math.sqrt(squares), total / flat.size


def sum_of_squares(b: np.ndarray, k: int = 1) -> float:
    """Sum of ``b * b`` for a float64 chunk, the squares written to scratch buffer ``k``."""
    sq = np.multiply(b, b, out=scratch(k)[: b.size])
    return float(sq.sum())


_LOCAL = threading.local()  # buffers per thread: summaries may be taken on several threads


def scratch(k: int = 0) -> np.ndarray:
    """The calling thread's ``k``-th float64 scratch buffer of :data:`CHUNK` elements."""
    bufs = getattr(_LOCAL, "bufs", None)
    if bufs is None:
        bufs = _LOCAL.bufs = []
    while len(bufs) <= k:
        bufs.append(np.empty(CHUNK, dtype=np.float64))
    return bufs[k]


def float64_chunks(*arrays: np.ndarray):
    """Yield aligned float64 chunks (lists, one per array) of equally long 1-D contiguous arrays.

    A float64 array's chunk is a view of it (read-only use); any other dtype is converted
    into the thread's buffer ``k`` for the ``k``-th array (valid until the next chunk).
    """
    n = arrays[0].size
    for start in range(0, n, CHUNK):
        out = []
        for k, a in enumerate(arrays):
            part = a[start : start + CHUNK]
            if part.dtype != np.float64:
                b = scratch(k)[: part.size]
                np.copyto(b, part, casting="unsafe")
                part = b
            out.append(part)
        yield out


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
    """Summarize an array (a :class:`Summary` is returned as it is).

    The summary of a large array is remembered while the array lives (keyed by the array
    object, held by a weak reference): the health tracker and the comparison summarize the
    same step's tensors, and the second call costs one CRC-32. It is reused only for the
    same object with the same shape, dtype and CRC-32 of its bytes as now, so an array
    changed in place is summarized again.
    """
    if isinstance(x, Summary):
        return x
    arr = np.asarray(x)
    flat = (arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)).reshape(-1)
    checksum = crc32(flat)
    memo = _MEMO.get(id(x))
    if memo is not None:
        ref, s = memo
        if ref() is x and s.checksum == checksum and s.shape == arr.shape and s.dtype == str(arr.dtype):
            return s
    if flat.size:
        total, squares, lo, hi = moments(flat)
        with np.errstate(all="ignore"):
            stats = np.array([math.sqrt(squares), lo, hi, total / flat.size])
        samples = flat[sample_indices(flat.size)].astype(np.float64)
    else:
        stats, samples = np.zeros(len(STATS)), np.zeros(0)
    stats.flags.writeable = samples.flags.writeable = False  # a remembered summary is shared
    s = Summary(tuple(arr.shape), str(arr.dtype), stats, samples, checksum)
    if isinstance(x, np.ndarray) and flat.size >= MEMO_MIN:
        _remember(x, s)
    return s


#: Arrays of at least this many elements have their summaries remembered (see summarize).
MEMO_MIN = 1024
_MEMO: dict[int, tuple] = {}  # id(array) -> (weak reference to it, its Summary)


def _remember(x: np.ndarray, s: Summary) -> None:
    key = id(x)

    def forget(ref, key=key):  # runs as the array is freed, before its id can be reused
        if _MEMO.get(key, (None,))[0] is ref:
            _MEMO.pop(key, None)

    _MEMO[key] = (weakref.ref(x, forget), s)
