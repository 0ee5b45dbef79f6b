"""Signatures of the recurrent pitfalls: a TF1 LSTMCell ported to nn.LSTM (``parity/catalog/pitfalls_rnn.py``)."""

from __future__ import annotations

import numpy as np

from .base import Context, close, pitfall
from .reference import lstm_tf1
from .requires import SEQUENCE

__all__ = ["PITFALLS"]

_SWAPS = (((0, 2, 1, 3), "j and f"), ((0, 1, 3, 2), "f and o"), ((0, 3, 2, 1), "j and o"))


def _reference_lstms(c: Context):
    """(name, h_a, h_b, x, kernel, bias, forget_bias) for every diverging sequence output the
    reference's LSTM (some kernel, bias and forget_bias among the parameters) reproduces."""
    xs = {n: np.asarray(v, float) for n, v in c.at(c.a, "inputs").items() if np.ndim(v) == 3}
    params = c.params_before(c.a)
    for n, ha, hb in c.diverging("forward", ndim=3):
        for x in xs.values():
            for k in (np.asarray(v, float) for v in params.values()):
                if k.ndim != 2 or k.shape[1] != 4 * ha.shape[2] or k.shape[0] != x.shape[2] + ha.shape[2]:
                    continue
                for b in (np.asarray(v, float) for v in params.values() if np.shape(v) == (k.shape[1],)):
                    for fb in (1.0, 0.0):
                        if close(lstm_tf1(x, k, b, fb), ha, c.tol * 10):
                            yield n, ha, hb, x, k, b, fb


def _check_lstm(c: Context, want: str):
    for n, ha, hb, x, k, b, fb in _reference_lstms(c):
        if want == "forget":
            alt = 0.0 if fb else 1.0
            if close(lstm_tf1(x, k, b, alt), hb, c.tol * 10):
                return 0.95, f"{n}: B equals the same LSTM with forget_bias {alt:g} instead of {fb:g}: TF1 LSTMCell adds forget_bias at run time; fold it into torch's f-gate bias"
            continue
        folded = b.copy()
        folded[2 * ha.shape[2] : 3 * ha.shape[2]] += fb  # forget_bias folded into the bias before the copy
        for perm, label in _SWAPS:
            if close(lstm_tf1(x, k, b, fb, perm), hb, c.tol * 10) or close(lstm_tf1(x, k, folded, 0.0, perm), hb, c.tol * 10):
                return 0.95, f"{n}: B equals the reference LSTM with gate blocks {label} swapped: TF1 LSTMCell order i, j, f, o vs torch/Keras i, f, g, o"
    return None


PITFALLS = [
    pitfall("lstm-gate-order", "LSTM gate order (TF1 i, j, f, o vs torch i, f, g, o)", "rnn", "P37", ["forward"],
            "the LSTM output equals the reference LSTM with two gate blocks swapped",
            lambda c: _check_lstm(c, "order"), requires=[SEQUENCE],
            explanation="TF1 LSTMCell's kernel [in + units, 4 units] holds gates i, j(=c), f, o; torch nn.LSTM (and Keras) i, f, g, o. Copying blocks in place swaps the forget and cell gates.",
            tf="i, j, f, o = split(concat([x, h]) @ kernel + bias, 4)", torch="i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)",
            fix="W_ih = kernel[:in].T and W_hh = kernel[in:].T with blocks reordered (0, 2, 1, 3)."),
    pitfall("lstm-forget-bias", "LSTM forget_bias (TF1 adds 1.0 at run time) and biases", "rnn", "P37", ["forward"],
            "the LSTM output equals the reference LSTM with forget_bias 0",
            lambda c: _check_lstm(c, "forget"), requires=[SEQUENCE],
            explanation="TF1 LSTMCell adds forget_bias=1.0 to the f gate at run time; it is not in the bias variable. torch has two biases (b_ih, b_hh): copying the bias into both doubles it.",
            tf="c = c sigmoid(f + forget_bias) + sigmoid(i) tanh(j)", torch="c = f c + i g with f = sigmoid(W x + b_ih + U h + b_hh)",
            fix="b_ih = bias (reordered) + forget_bias on the f block; b_hh = 0 and frozen."),
]
