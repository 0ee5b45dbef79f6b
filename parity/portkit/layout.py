"""Canonical layout (TensorFlow's) and its exact conversions to PyTorch's, in numpy.

Canonical: Dense kernel ``[in, out]``, conv kernel ``HWIO``, activations ``NHWC``,
flatten order ``(h, w, c)``. Every conversion here is a permutation, so each pair is an
exact inverse (tested); a port converts at its boundary and nowhere else.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = [
    "dense_to_torch",
    "dense_from_torch",
    "conv_to_torch",
    "conv_from_torch",
    "nhwc_to_nchw",
    "nchw_to_nhwc",
    "flatten_permutation",
    "flatten_rows_to_torch",
    "flatten_rows_from_torch",
    "dense_from_torch_flattened",
    "same_padding",
]


def dense_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Turn a Dense kernel ``[in, out]`` into a ``nn.Linear`` weight ``[out, in]``."""
    return np.ascontiguousarray(np.asarray(kernel).T)


def dense_from_torch(weight: np.ndarray) -> np.ndarray:
    """Turn a ``nn.Linear`` weight ``[out, in]`` into a Dense kernel ``[in, out]``."""
    return np.ascontiguousarray(np.asarray(weight).T)


def conv_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Turn a conv kernel ``HWIO`` into a ``nn.Conv2d`` weight ``OIHW``."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))


def conv_from_torch(weight: np.ndarray) -> np.ndarray:
    """Turn a ``nn.Conv2d`` weight ``OIHW`` into a conv kernel ``HWIO``."""
    return np.ascontiguousarray(np.transpose(weight, (2, 3, 1, 0)))


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    """Turn ``NHWC`` activations into ``NCHW``."""
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    """Turn ``NCHW`` activations into ``NHWC``."""
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def flatten_permutation(h: int, w: int, c: int) -> np.ndarray:
    """Return ``perm`` with ``flat_nchw = flat_nhwc[perm]``.

    A TF model flattens an ``NHWC`` map in ``(h, w, c)`` order, a torch model an ``NCHW``
    map in ``(c, h, w)`` order; row ``j`` of the torch-order kernel is row ``perm[j]``
    of the TF-order kernel.
    """
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).reshape(-1)


def flatten_rows_to_torch(kernel: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """Reorder the rows of the first Dense kernel after a flatten from (h,w,c) to (c,h,w)."""
    return np.ascontiguousarray(np.asarray(kernel)[flatten_permutation(h, w, c)])


def flatten_rows_from_torch(kernel: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """Reorder kernel rows from (c,h,w) back to (h,w,c): the inverse of :func:`flatten_rows_to_torch`."""
    out = np.empty_like(np.asarray(kernel))
    out[flatten_permutation(h, w, c)] = kernel
    return out


def dense_from_torch_flattened(weight: np.ndarray, h: int, w: int, c: int) -> np.ndarray:
    """Turn the ``nn.Linear`` weight ``[out, in]`` after a (c,h,w) flatten into the Dense kernel ``[in, out]``
    in (h,w,c) row order: ``flatten_rows_from_torch(dense_from_torch(weight), h, w, c)``, the same numbers in
    one gather instead of a transposed copy and a scatter (a step of seed 001 converts fc1's weight, gradient
    and both Adam slots)."""
    return np.asarray(weight).T[_inverse_permutation(h, w, c)]


@functools.lru_cache(maxsize=32)
def _inverse_permutation(h: int, w: int, c: int) -> np.ndarray:
    """``inv`` with ``flatten_permutation(h, w, c)[inv] == arange``: row ``i`` of the TF-order kernel is row
    ``inv[i]`` of the torch-order one (read-only: it is shared)."""
    inv = np.argsort(flatten_permutation(h, w, c))
    inv.setflags(write=False)
    return inv


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Return TensorFlow's SAME padding (before, after) along one axis.

    ``out = ceil(size / stride)``; the odd pixel of padding goes after (bottom/right),
    which a symmetric torch ``padding=k//2`` does not reproduce when stride > 1 and the
    size is even (PITFALLS P24).
    """
    eff = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2
