"""Random noise driven at the source in a TF1 graph: a standard-normal or uniform kernel on the forward
path (``RandomStandardNormal`` / ``RandomUniform`` and their stateless v2 forms: ``tf.random_normal`` of a
VAE's ``mu + exp(0.5 * logvar) * eps``, the noise of a denoising autoencoder), not a dropout's draw, is
fed with parity's draw for its site: the k-th normal kernel in graph order is site
``NOISE_BASE["normal"] + k`` (uniform likewise), a standard normal (``U[0, 1)``) the graph then scales and
shifts itself; without a draw, TensorFlow's own. A kernel inside a ``tf.while_loop``, and any other
random kernel on the forward path (a truncated normal, an integer or categorical draw), cannot be driven:
a note names it and the user's line.
"""

from __future__ import annotations

import os

from parity.errors import _is_users

__all__ = ["NOISE_BASE", "find_noise", "noise_notes"]

#: as parity.program.batches.NOISE_BASE (tests/test_noise_sources.py checks they agree)
NOISE_BASE = {"normal": 1_000_000, "uniform": 2_000_000, "undriven": 3_000_000}

DRIVEN = {"RandomStandardNormal": "normal", "StatelessRandomNormalV2": "normal", "StatelessRandomNormal": "normal",
          "RandomUniform": "uniform", "StatelessRandomUniformV2": "uniform", "StatelessRandomUniform": "uniform"}
UNDRIVEN = ("TruncatedNormal", "StatelessTruncatedNormalV2", "StatelessTruncatedNormal", "ParameterizedTruncatedNormal",
            "RandomUniformInt", "StatelessRandomUniformIntV2", "Multinomial", "RandomShuffle", "RandomGamma",
            "RandomPoissonV2", "StatelessMultinomial")


def users_line(op) -> str:
    """``file:line`` of the innermost frame of the user's own file that built ``op`` (``?`` when none)."""
    for frame in reversed(getattr(op, "traceback", None) or []):
        filename, lineno = (frame.filename, frame.lineno) if hasattr(frame, "filename") else (frame[0], frame[1])
        if _is_users(filename):
            return f"{os.path.basename(filename)}:{lineno}"
    return "?"


def _ancestors(ops, depth: int) -> list:
    """The ops ``depth`` steps above ``ops`` (and ``ops``), each once, in the order met."""
    seen, out, level = set(), [], list(ops)
    for _ in range(depth + 1):
        nxt = []
        for op in level:
            if op in seen:
                continue
            seen.add(op)
            out.append(op)
            nxt.extend(i.op for i in op.inputs)
        level = nxt
    return out


def find_noise(forward, dropout_ops, in_while_loop) -> list[dict]:
    """The random kernels a few ops above the forward path (graph order), but a dropout's: each a dict
    ``{"random": tensor name, "kind": normal|uniform|undriven, "name": what and where, "shape": static}``."""
    if not forward:
        return []
    claimed = {op for op in _ancestors(dropout_ops, 5) if op.type in DRIVEN}
    candidates = [op for op in _ancestors(forward, 4) if (op.type in DRIVEN or op.type in UNDRIVEN) and op not in claimed]
    order = {op: i for i, op in enumerate(forward[0].graph.get_operations())}
    out = []
    for op in sorted(set(candidates), key=order.get):
        kind = DRIVEN.get(op.type, "undriven")
        t = op.outputs[0]
        if kind != "undriven" and not t.dtype.is_floating:
            kind = "undriven"
        loop = in_while_loop(op)
        if loop:
            kind = "undriven"
        shape = tuple(t.shape.as_list()) if t.shape.rank is not None else None
        name = f"{op.type} {op.name} at {users_line(op)}"
        if kind == "undriven":
            why = "inside a tf.while_loop, where parity cannot feed it" if loop else "parity drives only normal and uniform draws"
            name = (f"{name} ({why}): it draws its own numbers; expect a difference from step 0 at the outputs after it "
                    "(compare them statistically)")
        out.append({"random": t.name, "kind": kind, "name": name, "shape": shape})
    return out


def noise_notes(noise: list[dict]) -> list[str]:
    """A note for each random kernel parity cannot drive."""
    return [f"not driven: {n['name']}" for n in noise if n["kind"] == "undriven"]
