"""numpy reference computations the signatures recompute a layer with (float64, NHWC like TF)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["conv2d", "pool2d", "same_pads", "gelu_exact", "gelu_tanh", "round_tf32", "lstm_tf1", "gru_tf1"]


def conv2d(x, k, stride, pads):
    """NHWC x HWIO convolution with explicit (top, bottom, left, right) zero padding."""
    pt, pb, pl, pr = pads
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = k.shape[:2]
    ho, wo = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], ho, wo, k.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            out += patch @ k[i, j]
    return out


def pool2d(x, k, stride, pads, kind):
    """NHWC pooling; ``max`` pads with -inf, ``avg`` divides by the valid count, ``avg_incl`` by k*k."""
    pt, pb, pl, pr = pads
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    ones = np.pad(np.ones_like(x), ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    ho, wo = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    out = np.full((x.shape[0], ho, wo, x.shape[3]), -np.inf if kind == "max" else 0.0)
    count = np.zeros_like(out)
    for i in range(k):
        for j in range(k):
            sl = (slice(None), slice(i, i + stride * (ho - 1) + 1, stride), slice(j, j + stride * (wo - 1) + 1, stride))
            if kind == "max":
                out = np.maximum(out, xp[sl])
            else:
                out += xp[sl]
                count += ones[sl]
    if kind == "avg":
        out /= count
    elif kind == "avg_incl":
        out /= k * k
    return out


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def gelu_exact(z):
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


def gelu_tanh(z):
    return 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))


def round_tf32(x):
    m, e = np.frexp(np.asarray(x, float))
    return np.ldexp(np.round(m * 2048.0) / 2048.0, e)


def lstm_tf1(x, kernel, bias, forget_bias, perm=(0, 1, 2, 3)):
    """Run a TF1 LSTMCell (gates i, j, f, o) whose gate blocks were read in order ``perm``."""
    units = kernel.shape[1] // 4
    blocks = np.split(kernel, 4, axis=1)
    kernel = np.concatenate([blocks[p] for p in perm], axis=1)
    bias = np.concatenate([np.split(bias, 4)[p] for p in perm])
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], units))
    c = np.zeros_like(h)
    outs = []
    for t in range(x.shape[1]):
        g = np.concatenate([x[:, t], h], axis=1) @ kernel + bias
        i, j, f, o = np.split(g, 4, axis=1)
        c = c * sig(f + forget_bias) + sig(i) * np.tanh(j)
        h = sig(o) * np.tanh(c)
        outs.append(h)
    return np.stack(outs, axis=1)


def gru_tf1(x, gates_kernel, gates_bias, cand_kernel, cand_bias, reset_after=False):
    """Run a TF1 GRUCell (``reset_after=False``: r * h before the candidate matmul), or, with
    ``reset_after=True``, torch nn.GRU's cell with the same weights and b_hh = 0 (r * (U h))."""
    n_in, units = x.shape[2], cand_kernel.shape[1]
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    h = np.zeros((x.shape[0], units))
    outs = []
    for t in range(x.shape[1]):
        value = sig(np.concatenate([x[:, t], h], 1) @ gates_kernel + gates_bias)
        r, u = value[:, :units], value[:, units:]
        if reset_after:
            c = np.tanh(x[:, t] @ cand_kernel[:n_in] + cand_bias + r * (h @ cand_kernel[n_in:]))
        else:
            c = np.tanh(np.concatenate([x[:, t], r * h], 1) @ cand_kernel + cand_bias)
        h = u * h + (1 - u) * c
        outs.append(h)
    return np.stack(outs, axis=1)
