"""Recurrent layers mapped automatically: TF1 LSTM/RNN cells, Keras LSTM/SimpleRNN/GRU -> torch
nn.LSTM/nn.RNN/nn.GRU (and their cells), numpy only.

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
- Keras ``GRU`` (reset_after=True, torch's maths): kernel ``[in, 3H]`` and recurrent_kernel ``[H, 3H]``,
  gates z, r, h, are canonical; torch ``nn.GRU``'s ``weight_ih`` / ``weight_hh`` take ``T`` then
  ``gates:rzn>zrn``; the Keras bias ``[2, 3H]`` (input and recurrent bias) gives ``row:0`` -> ``bias_ih`` and
  ``row:1`` -> ``bias_hh`` (report names ``<bias>:input``, ``<bias>:recurrent``; ``gates:rzn>zrn`` on torch's).
- TF1 ``GRUCell`` and Keras ``GRU(reset_after=False)`` apply the reset gate before the recurrent matmul,
  torch ``nn.GRU`` after: not the same maths (pitfall ``gru-reset-after``), refused in one line. A TF1
  ``GRUCell``'s two kernels (``gates``, ``candidate``) are dense kernels: against a port that writes the cell out
  with two ``nn.Linear`` (no ``nn.GRU``) they map like any Dense layer.
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


def _units(specs, framework: str, gru: list | None = None) -> list[dict]:
    """One side's recurrent layers, in order: {"kernel", "recurrent", "bias", "bias2", "fused", "G", "name"}; a TF1
    GRUCell's variables are none of them (appended to ``gru``)."""
    units: dict[str, dict] = {}
    for s in specs:
        if framework == "torch":
            if s.kind not in ("lstm_kernel", "lstm_recurrent", "lstm_bias"):
                continue
            attr = s.name[len(s.layer) + 1:] if s.layer and s.name.startswith(s.layer + ".") else s.name.rpartition(".")[2]
            hit = _TORCH.match(attr)
            if not hit:
                continue
            # a bidirectional RNN: each layer's ``_reverse`` weights are a unit of their own, after the forward one
            # (as Keras's Bidirectional holds its forward layer, then its backward layer)
            u = units.setdefault(f"{s.layer}{hit.group(2)}", {"name": f"{s.layer}{hit.group(2)}"})
            u[{"weight_ih": "kernel", "weight_hh": "recurrent", "bias_ih": "bias", "bias_hh": "bias2"}[hit.group(1)]] = s
        elif framework == "tf1":
            cell = _tf1_cell(s.layer or s.name)
            if cell == "gru":  # TF1 GRUCell: two dense kernels (gates, candidate), never an nn.GRU's (recurrent_entries)
                if gru is not None and s.trainable:
                    gru.append(s)
                continue
            leaf = s.name.rpartition("/")[2]
            if cell is None or leaf not in ("kernel", "bias"):
                continue
            u = units.setdefault(s.layer, {"name": s.layer, "fused": True, "cell": cell})
            u["kernel" if leaf == "kernel" else "bias"] = s
        else:
            if s.kind not in ("lstm_kernel", "lstm_recurrent", "lstm_bias"):
                continue
            layer = s.name.rpartition("/")[0] or s.layer  # (Bidirectional: two cells of one name, forward_*/ and backward_*/)
            u = units.setdefault(layer, {"name": layer, "keras": True})
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
    if u.get("keras"):  # Keras [H, G*H] (by the side, not the shape: a SimpleRNN's [H, H] is square)
        return k.shape[0], r.shape[0], r.shape[1] // r.shape[0]
    return k.shape[1], r.shape[1], r.shape[0] // r.shape[1]  # torch [G*H, H]


def _gru_entries(r: dict, p: dict, n_in: int, h: int) -> tuple[list, list]:
    """A Keras GRU (reset_after=True: kernel [in, 3H], recurrent_kernel [H, 3H], gates z, r, h; bias [2, 3H],
    the input and the recurrent bias) onto torch nn.GRU (weight_ih [3H, in], weight_hh [3H, H], gates r, z, n;
    bias_ih, bias_hh): the canonical layout is Keras's, torch's weights ``T`` then ``gates:rzn>zrn``, the bias
    rows ``row:0`` / ``row:1`` (report names ``<bias>:input`` / ``<bias>:recurrent``)."""
    gates = ["gates:rzn>zrn"]
    b, pb, pb2 = r.get("bias"), p.get("bias"), p.get("bias2")
    if b is not None and len(b.shape) == 1:
        raise ParityError(f"cannot map {b.name}: a Keras GRU with reset_after=False applies the reset gate before the "
                          "recurrent matmul, torch nn.GRU after it: not the same maths (parity explain gru-reset-after); "
                          "use reset_after=True (Keras 2.x's default) or compare with a mapping file")
    out = [Entry(r[key].name, p[key].name, [], ["T"] + gates, (n_in if key == "kernel" else h, 3 * h), kind,
                 r[key].trainable and p[key].trainable)
           for key, kind in (("kernel", "lstm_kernel"), ("recurrent", "lstm_recurrent"))]
    notes = []
    if b is None and pb is None:
        notes.append(f"{r['name']}: a GRU without biases, taken as Keras's reset_after=True (torch nn.GRU's maths)")
    elif b is None or pb is None or pb2 is None:
        raise ParityError(f"cannot map the recurrent layers automatically: {r['name']} and {p['name']} differ in having "
                          "biases; write the pairs in a mapping file")
    else:
        for row, port, part in ((0, pb, "input"), (1, pb2, "recurrent")):
            out.append(Entry(b.name, port.name, [f"row:{row}"], gates, (3 * h,), "lstm_bias",
                             b.trainable and port.trainable, name=f"{b.name}:{part}"))
    return out, notes


def recurrent_entries(ref_specs, ref_framework: str, port_specs, port_framework: str):
    """``(entries, notes, used reference names, used port names)`` for the recurrent layers, paired in order.

    Raises:
        ParityError: (one line) recurrent layers that cannot be paired or mapped, naming them.
    """
    gru: list = []
    ru, pu = _units(ref_specs, ref_framework, gru), _units(port_specs, port_framework)
    if gru and port_framework == "torch" and any((_size(u) or (0, 0, 0))[2] == 3 for u in pu):
        raise ParityError(f"cannot map {gru[0].name}: TF1 GRUCell applies the reset gate before the recurrent matmul, "
                          "torch nn.GRU (and Keras GRU reset_after=True) after it: not the same maths (parity explain "
                          "gru-reset-after); write TF1's cell out in torch, two nn.Linear(in + H, .): gates [r, u] = "
                          "sigmoid(gates([x, h])), h' = u * h + (1 - u) * tanh(candidate([x, r * h])), which maps "
                          "automatically (examples/rnn/torch_gru_cell.py)")
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
        if g == 3:  # a Keras GRU onto nn.GRU
            e, n = _gru_entries(r, p, n_in, h)
            entries += e
            notes += n
            for u, used in ((r, used_r), (p, used_p)):
                used.update(s.name for key in ("kernel", "recurrent", "bias", "bias2") if (s := u.get(key)) is not None)
            continue
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
                                 f"moves twice as fast as the reference's one bias {b.name} (pitfall lstm-double-bias: "
                                 "keep it at 0 and frozen); the parameters stage compares it with 0")
        for side, u, used in (("r", r, used_r), ("p", p, used_p)):
            used.update(s.name for key in ("kernel", "recurrent", "bias", "bias2") if (s := u.get(key)) is not None)
    return entries, notes, used_r, used_p
