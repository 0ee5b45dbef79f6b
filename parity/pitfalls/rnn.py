"""Signatures of the recurrent pitfalls: a TF1 LSTMCell ported to nn.LSTM (``parity/cases/catalog/pitfalls_rnn.py``)."""

from __future__ import annotations

import numpy as np

from parity.pitfalls.base import Context, Precondition, close, pitfall
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


def _check_second_bias(c: Context):
    """A parameter the reference holds at zero (before and after the step: TF's one bias has no second) that the
    port moves by exactly the update of another parameter of its shape, which agrees on both sides: a second
    bias trained alongside the first (torch's bias_hh beside bias_ih get the same gradient), so the gates see
    their sum move twice as fast. Read where the mapping pairs bias_hh with a zero (``<bias>:second``)."""
    pa0, pb0, pb = c.params_before(c.a), c.params_before(c.b), c.at(c.b, "parameters")
    for n, ya, yb in c.diverging("parameters"):
        if n not in pa0 or n not in pb0 or np.any(np.asarray(pa0[n], float)) or np.any(ya):
            continue
        moved = yb - np.asarray(pb0[n], float)
        if not np.any(moved):
            continue
        for m, after in pb.items():
            if m == n or m not in pb0 or np.shape(after) != yb.shape or c.semantic("parameters", m):
                continue
            twin = np.asarray(after, float) - np.asarray(pb0[m], float)
            if np.any(twin) and close(moved, twin, c.tol * 10):
                # above trainable-var-list's 0.95: the same "moves in one side only" plus the twin update that says why
                return 0.97, (f"{n}: zero in the reference before and after step {c.k} (one bias), while the port moves it by exactly "
                              f"{m}'s update (max {np.max(np.abs(moved)):.3g}), and {m} agrees: a second bias trained with the same "
                              "gradient (torch's bias_hh beside bias_ih), so the gates' bias moves twice as fast")
    return None


def _logit(p):
    return np.log(p) - np.log1p(-p)


def _gate(v):
    """``v`` as floats where every value lies in (0, 1) (a sigmoid gate's output), else None."""
    v = np.asarray(v, float)
    return v if v.size and np.all(v > 0) and np.all(v < 1) else None


def _check_gate_offset(c: Context):
    """A hand-written cell (no LSTM to reproduce): a diverging gate output (values in (0, 1)) equals one of the other side's
    gate outputs of that step with one constant added to its pre-activation, sigmoid(logit(x) + c) for every element:
    a forget_bias added on one side only (TF1 adds it at run time; a cell written out by hand may or may not).
    The other side's outputs are read one at a time (a large model's step is never held twice)."""
    fa, fb = c.at(c.a, "forward"), c.at(c.b, "forward")
    for n, ya, yb in c.diverging("forward"):
        for who, y, others in (("the port", _gate(yb), fa), ("the reference", _gate(ya), fb)):
            if y is None:
                continue
            for m in others:
                if np.shape(others[m]) != y.shape or (x := _gate(others[m])) is None:
                    continue
                off = float(np.median(_logit(y) - _logit(x)))
                if abs(off) > 1e-6 and close(1.0 / (1.0 + np.exp(-(_logit(x) + off))), y, c.tol * 10):
                    other = "reference" if who == "the port" else "port"
                    return 0.9, (f"{n}: {who}'s gate output equals sigmoid(pre-activation {off:+.6g}) of the {other}'s {m} for every "
                                 f"element: a constant {off:.6g} added to one gate on one side only (a forget_bias: TF1's LSTMCell "
                                 "adds it at run time; a hand-written cell must add it, or fold it into the f gate's bias, as the "
                                 "other side does)")
    return None


def _check_forget(c: Context):
    return _check_lstm(c, "forget") or _check_gate_offset(c)


def _check_lstm_biases(c: Context):
    return _check_second_bias(c) if c.first.stage == "parameters" else _check_lstm(c, "double")


_SEQUENCE_OR_PARAMETERS = Precondition("a sequence input [batch, time, features] (at the forward stage)",
                                       lambda c: c.first.stage == "parameters" or SEQUENCE(c))


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
    pitfall("lstm-double-bias", "nn.LSTM's second bias (bias_hh) not zero, or trained, where TF has one bias", "rnn", "P37",
            ["forward", "parameters"],
            "B's sequence output equals the reference's LSTM with its (forget-folded) bias doubled; or (parameters; cases "
            "pitfall_lstm_double_bias_trained_right / _wrong) a bias the reference holds at zero moves in B by exactly the "
            "update of B's other bias, which agrees",
            _check_lstm_biases, requires=[_SEQUENCE_OR_PARAMETERS],
            explanation="TF1 LSTMCell and Keras LSTM have one bias per gate; torch's nn.LSTM adds bias_ih and bias_hh. A port that "
                        "copies TF's bias into both (or leaves bias_hh at its random init) shifts every gate's pre-activation; one "
                        "that zeroes bias_hh but leaves it trainable trains both with the same gradient: their sum moves twice as "
                        "fast as TF's one bias (from the first update on).",
            tf="gates = [x, h] @ kernel + bias", torch="gates = x W_ih^T + b_ih + h W_hh^T + b_hh",
            fix="Copy the bias (with forget_bias folded into the f block) into bias_ih, zero bias_hh and freeze it "
                "(bias_hh.requires_grad_(False); or split it: b_ih + b_hh = bias, one of them trained)."),
    pitfall("lstm-gate-order", "LSTM gate order (TF1 i, j, f, o vs torch i, f, g, o)", "rnn", "P37", ["forward"],
            "the LSTM output equals the reference LSTM with two gate blocks swapped",
            lambda c: _check_lstm(c, "order"), requires=[SEQUENCE],
            explanation="TF1 LSTMCell's kernel [in + units, 4 units] holds gates i, j(=c), f, o; torch nn.LSTM (and Keras) i, f, g, o. Copying blocks in place swaps the forget and cell gates.",
            tf="i, j, f, o = split(concat([x, h]) @ kernel + bias, 4)", torch="i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)",
            fix="W_ih = kernel[:in].T and W_hh = kernel[in:].T with blocks reordered (0, 2, 1, 3)."),
    pitfall("lstm-forget-bias", "LSTM forget_bias (TF1 adds 1.0 at run time) and biases", "rnn", "P37", ["forward"],
            "the LSTM output equals the reference LSTM with forget_bias 0; or (a hand-written cell; cases "
            "pitfall_lstm_forget_bias_cell_right / _wrong) a gate output equals the other side's with one constant added to "
            "its pre-activation",
            _check_forget, requires=[SEQUENCE],
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
