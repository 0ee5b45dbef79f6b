"""Pitfall cases: a TF1 LSTMCell (gate order i, j, f, o; forget_bias at run time) in nn.LSTM."""

from __future__ import annotations

from parity.cases.case import Cost, Init
from parity.cases.catalog.pitfalls_optim import pitfall_pair

_P = {
    "kernel": Init((3 + 4, 16), "glorot_uniform"),
    "bias": Init((16,), "random_normal", {"stddev": 0.1}),
    "K2": Init((4, 1), "random_normal", {"stddev": 0.5}),
}
_X = {"X": {"kind": "normal", "shape": (2, 4, 3)}, "T": {"kind": "normal", "shape": (2, 1)}}
# float32 model: 4 time steps of a 7-long inner product through 2 gates each.
_COST = Cost(depth=8, reduction=7)

for _name, _title in (("lstm-gate-order", "TF1 LSTMCell gates i, j, f, o"), ("lstm-forget-bias", "TF1 LSTMCell forget_bias=1.0"),
                      ("lstm-double-bias", "TF1 LSTMCell (one bias) in nn.LSTM (bias_ih and bias_hh)")):
    pitfall_pair(_name, module="pitfalls.rnn", title=_title, reference="tf1", params=_P, arrays=_X, steps=2,
                 options={"lr": 0.125, "forget_bias": 1.0}, cost=_COST)

# lstm-double-bias's second form (corpus 06): bias_hh zeroed but left trainable; both biases get the same gradient,
# so their sum moves twice as fast from the first update (the parameters stage: TF's zero vs the port's bias_hh)
pitfall_pair("lstm-double-bias", module="pitfalls.rnn", title="TF1 LSTMCell (one bias) in nn.LSTM with bias_hh zeroed, still trained",
             reference="tf1", params=_P, arrays=_X, steps=2, options={"lr": 0.125, "forget_bias": 1.0, "bias_hh": "trained"},
             cost=_COST, variant="trained")

# lstm-forget-bias in a hand-written cell (corpus 01: the port's cell adds 1.0 on f, TF's does not): the cell's gate
# outputs are compared; the first forget gate differs by a constant on its pre-activation
pitfall_pair("lstm-forget-bias", module="pitfalls.rnn", title="TF1 LSTMCell forget_bias=1.0, the port's cell written out by hand",
             reference="tf1", params=_P, arrays=_X, steps=2, options={"lr": 0.125, "forget_bias": 1.0, "cell": "hand"},
             cost=_COST, variant="cell")

# A TF1 GRUCell (reset before the candidate matmul) against nn.GRU (reset after it), PITFALLS P38.
_GRU = {
    "gates_kernel": Init((3 + 4, 8), "glorot_uniform"),
    "gates_bias": Init((8,), "random_normal", {"stddev": 0.1}),
    "candidate_kernel": Init((3 + 4, 4), "glorot_uniform"),
    "candidate_bias": Init((4,), "random_normal", {"stddev": 0.1}),
    "K2": Init((4, 1), "random_normal", {"stddev": 0.5}),
}
pitfall_pair("gru-reset-after", module="pitfalls.gru", title="TF1 GRUCell (reset gate before the candidate matmul)",
             reference="tf1", params=_GRU, arrays=_X, steps=2, options={"lr": 0.125}, cost=Cost(depth=8, reduction=7))
