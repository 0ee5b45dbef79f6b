"""Recurrent layers mapped automatically: TF1 LSTM/RNN cells, Keras LSTM/SimpleRNN -> torch nn.LSTM/nn.RNN
(and their cells), numpy only.

Canonical layout of one recurrent layer (Keras's): an input kernel ``[in, G*H]``, a recurrent kernel
``[H, G*H]`` and one effective bias ``[G*H]``, gates in the order i, f, g, o (G = 4; a plain RNN: G = 1).

- TF1 ``BasicLSTMCell`` / ``LSTMCell``: the fused kernel ``[in+H, 4H]`` (gates i, j, f, o) gives both
  kernels (``rows:0:in`` and ``rows:in:in+H``, then ``gates:ijfo>ifjo``; report names ``<kernel>:input``
  and ``<kernel>:recurrent``); its bias gets the run-time ``forget_bias`` (1.0, the cells' default) added
  on the f gate (``forget_bias:1``, values only: gradients, slots and updates are the bias's own).
- Keras ``LSTM``: kernel, recurrent_kernel and bias are already canonical (gates i, f, c, o).
- torch ``nn.LSTM``: ``weight_ih`` / ``weight_hh`` transposed (``T``); ``bias_ih`` is the effective bias,
  ``bias_hh`` pairs with the reference's bias under the report name ``<bias>:second`` and op ``zero``: its
  value must stay 0 (kept at 0 and frozen, the port trains like TF's one bias; trained, the two biases move
  their sum twice as fast and the parameters stage shows it), its gradient is the bias's gradient.
- TF1 ``GRUCell`` applies the reset gate before the recurrent matmul, torch ``nn.GRU`` after: not the
  same maths (pitfall ``gru-reset-after``), refused in one line.
"""

from __future__ import annotations

import re

from parity.errors import ParityError

from .model import Entry

__all__ = ["recurrent_entries"]

_TORCH = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)(.*)$")
_TF1_GATES = {"lstm": 4, "rnn": 1}


def _tf1_cell(layer: str) -> str | None:
    leaf = [p for p in layer.strip("/").split("/") if p]
    for part in reversed(leaf):
        if part.endswith("gru_cell"):
            return "gru"
        if part.endswith("lstm_cell"):
            return "lstm"
        if part.endswith("rnn_cell"):
            return "rnn"
    return None


def _units(specs, framework: str) -> list[dict]:
    """One side's recurrent layers, in order: {"kernel", "recurrent", "bias", "bias2", "fused", "G", "name"}."""
    units: dict[str, dict] = {}
    for s in specs:
        if framework == "torch":
            if s.kind not in ("lstm_kernel", "lstm_recurrent", "lstm_bias"):
                continue
            attr = s.name[len(s.layer) + 1:] if s.layer and s.name.startswith(s.layer + ".") else s.name.rpartition(".")[2]
            hit = _TORCH.match(attr)
            if not hit:
                continue
            if hit.group(2).endswith("_reverse"):
                raise ParityError(f"cannot map the variables automatically: {s.name} belongs to a bidirectional torch RNN; "
                                  "write its pairs in a mapping file (see docs/own-model.md)")
            u = units.setdefault(f"{s.layer}{hit.group(2)}", {"name": f"{s.layer}{hit.group(2)}"})
            u[{"weight_ih": "kernel", "weight_hh": "recurrent", "bias_ih": "bias", "bias_hh": "bias2"}[hit.group(1)]] = s
        elif framework == "tf1":
            cell = _tf1_cell(s.layer or s.name)
            if cell == "gru" and s.trainable:
                raise ParityError(f"cannot map {s.name}: TF1 GRUCell applies the reset gate before the recurrent matmul, "
                                  "torch nn.GRU (and Keras GRU reset_after=True) after it: not the same maths "
                                  "(parity explain gru-reset-after); port it as a hand-written cell, or compare with a mapping file")
            leaf = s.name.rpartition("/")[2]
            if cell is None or leaf not in ("kernel", "bias"):
                continue
            u = units.setdefault(s.layer, {"name": s.layer, "fused": True, "cell": cell})
            u["kernel" if leaf == "kernel" else "bias"] = s
        else:
            if s.kind not in ("lstm_kernel", "lstm_recurrent", "lstm_bias"):
                continue
            u = units.setdefault(s.layer, {"name": s.layer})
            u[{"lstm_kernel": "kernel", "lstm_recurrent": "recurrent", "lstm_bias": "bias"}[s.kind]] = s
    return list(units.values())


def _size(u: dict) -> tuple[int, int, int] | None:
    """(in, H, G) of a unit, None when its variables do not say."""
    k = u.get("kernel")
    if k is None or len(k.shape) != 2:
        return None
    if u.get("fused"):
        g = _TF1_GATES[u["cell"]]
        h = k.shape[1] // g
        return k.shape[0] - h, h, g
    r = u.get("recurrent")
    if r is None:
        return None
    if r.shape[0] < r.shape[1]:  # Keras [H, G*H]
        return k.shape[0], r.shape[0], r.shape[1] // r.shape[0]
    return k.shape[1], r.shape[1], r.shape[0] // r.shape[1]  # torch [G*H, H]


def recurrent_entries(ref_specs, ref_framework: str, port_specs, port_framework: str):
    """``(entries, notes, used reference names, used port names)`` for the recurrent layers, paired in order.

    Raises:
        ParityError: (one line) recurrent layers that cannot be paired or mapped, naming them.
    """
    ru, pu = _units(ref_specs, ref_framework), _units(port_specs, port_framework)
    if not ru or not pu or ref_framework == port_framework:
        return [], [], set(), set()
    if port_framework != "torch":
        raise ParityError(f"cannot map the recurrent layers automatically from a {ref_framework} reference to a "
                          f"{port_framework} port ({', '.join(u['name'] for u in ru)}): write the pairs in a mapping file")
    if len(ru) != len(pu) or [_size(u) for u in ru] != [_size(u) for u in pu]:
        desc = lambda us: ", ".join(f"{u['name']} (in, H, gates) {_size(u)}" for u in us)  # noqa: E731
        raise ParityError(f"cannot map the recurrent layers automatically: reference {desc(ru)}; port {desc(pu)}. "
                          "Write the pairs in a mapping file (see docs/own-model.md)")
    entries, notes, used_r, used_p = [], [], set(), set()
    for r, p in zip(ru, pu):
        n_in, h, g = _size(r)
        gates = ["gates:ijfo>ifjo"] if r.get("fused") and g == 4 else []
        kind = "lstm_kernel"
        if r.get("fused"):
            k = r["kernel"].name
            entries.append(Entry(k, p["kernel"].name, [f"rows:0:{n_in}"] + gates, ["T"], (n_in, g * h), kind,
                                 r["kernel"].trainable and p["kernel"].trainable, name=f"{k}:input"))
            entries.append(Entry(k, p["recurrent"].name, [f"rows:{n_in}:{n_in + h}"] + gates, ["T"], (h, g * h),
                                 "lstm_recurrent", r["kernel"].trainable and p["recurrent"].trainable, name=f"{k}:recurrent"))
        else:
            for key, kk in (("kernel", kind), ("recurrent", "lstm_recurrent")):
                entries.append(Entry(r[key].name, p[key].name, [], ["T"], (n_in if key == "kernel" else h, g * h), kk,
                                     r[key].trainable and p[key].trainable))
        b = r.get("bias")
        if b is None or p.get("bias") is None:
            if b is not None or p.get("bias") is not None:
                raise ParityError(f"cannot map the recurrent layers automatically: {r['name']} and {p['name']} differ in "
                                  "having a bias; write the pairs in a mapping file")
        else:
            fb = ["forget_bias:1"] if r.get("fused") and g == 4 else []
            if fb:
                notes.append(f"{r['name']}: TF1's run-time forget_bias taken as 1.0 (the cells' default) and added to the "
                             f"f gate of {p['bias'].name}; a program with another forget_bias: edit the forget_bias op")
            second = p.get("bias2")
            entries.append(Entry(b.name, p["bias"].name, gates + fb, [], (g * h,), "lstm_bias",
                                 b.trainable and p["bias"].trainable, name=b.name if second else ""))
            if second is not None:
                entries.append(Entry(b.name, second.name, gates + ["zero"], [], (g * h,), "lstm_bias",
                                     b.trainable and second.trainable, name=f"{b.name}:second"))
                if second.trainable:
                    notes.append(f"{second.name} is trained: with {p['bias'].name} the gates see their sum, which then "
                                 f"moves twice as fast as the reference's one bias {b.name} (pitfall lstm-forget-bias: "
                                 "keep it at 0 and frozen); the parameters stage compares it with 0")
        for side, u, used in (("r", r, used_r), ("p", p, used_p)):
            used.update(s.name for key in ("kernel", "recurrent", "bias", "bias2") if (s := u.get(key)) is not None)
    return entries, notes, used_r, used_p
