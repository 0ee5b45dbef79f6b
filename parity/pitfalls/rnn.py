"""Signatures of the recurrent pitfalls: a TF1 LSTMCell ported to nn.LSTM (``parity/cases/catalog/pitfalls_rnn.py``)."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, close, pitfall
from parity.pitfalls.reference import gru_tf1, lstm_tf1
from parity.pitfalls.requires import SEQUENCE

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
        if want == "double":
            if close(lstm_tf1(x, k, 2 * folded, 0.0), hb, c.tol * 10):
                return 0.95, (f"{n}: B equals the reference LSTM with its bias (forget_bias {fb:g} folded in) counted twice: "
                              "torch's bias_hh holds a copy of bias_ih where TF has one bias (bias_hh must be zero)")
            continue
        for perm, label in _SWAPS:
            if close(lstm_tf1(x, k, b, fb, perm), hb, c.tol * 10) or close(lstm_tf1(x, k, folded, 0.0, perm), hb, c.tol * 10):
                return 0.95, f"{n}: B equals the reference LSTM with gate blocks {label} swapped: TF1 LSTMCell order i, j, f, o vs torch/Keras i, f, g, o"
    return None


def _check_gru(c: Context):
    xs = [np.asarray(v, float) for v in c.at(c.a, "inputs").values() if np.ndim(v) == 3]
    params = {n: np.asarray(v, float) for n, v in c.params_before(c.a).items()}
    for n, ha, hb in c.diverging("forward", ndim=3):
        u = ha.shape[2]
        for x in xs:
            fan = x.shape[2] + u
            gks = [v for v in params.values() if v.shape == (fan, 2 * u)]
            cks = [v for v in params.values() if v.shape == (fan, u)]
            gbs = [v for v in params.values() if v.shape == (2 * u,)]
            cbs = [v for v in params.values() if v.shape == (u,)]
            for gk in gks:
                for ck in cks:
                    for gb in gbs:
                        for cb in cbs:
                            before, after = gru_tf1(x, gk, gb, ck, cb), gru_tf1(x, gk, gb, ck, cb, reset_after=True)
                            for ya, yb, la, lb in ((ha, hb, "A", "B"), (hb, ha, "B", "A")):
                                if close(before, ya, c.tol * 10) and close(after, yb, c.tol * 10):
                                    return 0.95, (f"{n}: {la} equals the GRU with the reset gate applied to the state before the candidate "
                                                  f"matmul (TF1 GRUCell, Keras reset_after=False), {lb} the one applying it after "
                                                  "(torch nn.GRU, Keras reset_after=True), with the same weights: no weight copy makes "
                                                  "nn.GRU compute the TF1 cell; write the cell out")
    return None


PITFALLS = [
    pitfall("lstm-double-bias", "nn.LSTM's second bias (bias_hh) not zero where TF has one bias", "rnn", "P37", ["forward"],
            "B's sequence output equals the reference's LSTM with its (forget-folded) bias doubled",
            lambda c: _check_lstm(c, "double"), requires=[SEQUENCE],
            explanation="TF1 LSTMCell and Keras LSTM have one bias per gate; torch's nn.LSTM adds bias_ih and bias_hh. A port that "
                        "copies TF's bias into both (or leaves bias_hh at its random init) shifts every gate's pre-activation.",
            tf="gates = [x, h] @ kernel + bias", torch="gates = x W_ih^T + b_ih + h W_hh^T + b_hh",
            fix="Copy the bias (with forget_bias folded into the f block) into bias_ih and zero bias_hh (or split it: b_ih + b_hh = bias)."),
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
    pitfall("gru-reset-after", "GRU reset gate before (TF1 GRUCell, Keras reset_after=False) vs after (torch nn.GRU) the matmul", "rnn", "P38", ["forward"],
            "the GRU output equals the reference GRU recomputed with the reset gate applied after the hidden matmul",
            _check_gru, requires=[SEQUENCE],
            explanation="TF1's GRUCell and Keras GRU(reset_after=False) compute the candidate as tanh(W x + U (r * h) + b); torch nn.GRU (and Keras reset_after=True, TF2's default) as tanh(W x + b_in + r * (U h + b_hn)). The weights copy over with matching shapes, but no copy makes nn.GRU compute the TF1 cell.",
            tf="c = tanh(concat([x, r * h]) @ candidate_kernel + candidate_bias)", torch="n = tanh(W_in x + b_in + r * (W_hn h + b_hn))",
            fix="Write the TF1 cell out in torch (a loop over time), or train the TF side with reset_after=True."),
]
