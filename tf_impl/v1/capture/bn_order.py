"""Updates of one variable that a TF1 graph leaves unordered, given one order (BatchNorm called twice per step).

A BatchNorm layer called twice in one ``session.run`` with its updates in the call (TF1 contrib
``batch_norm(updates_collections=None)``: a GAN's D(real) and D(fake, reuse=True)) builds, per call, an
``assign_moving_average``: ``v -= (1 - decay) * (read(v) - batch)``. Nothing orders one call's ``read(v)`` after
the other call's assign, so what the step stores depends on TF's scheduler: both reads first gives
``v - sum_i (1 - decay)(v - batch_i)``, a read after the other update chains them. Measured on corpus 02 (TF 2.21,
CPU): every read first in the float64 graph; in the float32 graph one moving variance chained with parity's
one-thread session and three other statistics chained with TF's default threads, each the same in repeated runs
of one session. A comparison of that state would then depend on the dtype and the threads.

:func:`order_shared_updates` gives the graph one order before it runs: every read an update of ``v`` computes from
runs before any update of ``v`` in the same run (control inputs), i.e. each update from the statistics the step
read: what TF computes in float64 and in most of the float32 statistics. The note says so.
"""

from __future__ import annotations

__all__ = ["order_shared_updates", "shared_updates_note"]

_UPDATES = ("AssignSubVariableOp", "AssignAddVariableOp", "AssignVariableOp")
_THROUGH = ("Identity", "Cast", "Sub", "Mul", "AddV2", "Add", "RealDiv", "StopGradient")


def _name(inp: str) -> str:
    return inp.lstrip("^").split(":")[0]


def _reads_of(nodes: dict, start: str, var: str, depth: int = 6) -> list[str]:
    """The ``ReadVariableOp`` nodes of ``var`` an update's value is computed from (through arithmetic)."""
    found, todo, seen = [], [(start, 0)], set()
    while todo:
        name, d = todo.pop()
        if name in seen or name not in nodes or d > depth:
            continue
        seen.add(name)
        node = nodes[name]
        if node.op == "ReadVariableOp" and node.input and _name(node.input[0]) == var:
            found.append(name)
        elif node.op in _THROUGH:
            todo.extend((_name(i), d + 1) for i in node.input if not i.startswith("^"))
    return found


def _in_control_flow(name: str) -> bool:
    return any(part in ("while", "cond") or part.startswith(("while_", "cond_")) for part in name.split("/"))


def order_shared_updates(gdef) -> list[str]:
    """Order, in ``gdef`` (in place), the updates of each resource variable that two or more update ops write from
    their own reads: every such read before every other such update. Returns the variables ordered."""
    nodes = {n.name: n for n in gdef.node}
    by_var: dict[str, list] = {}
    for node in gdef.node:
        if node.op in _UPDATES and len(node.input) >= 2 and not _in_control_flow(node.name):
            var = _name(node.input[0])
            if var in nodes and nodes[var].op == "VarHandleOp":
                reads = _reads_of(nodes, _name(node.input[1]), var)
                if reads:
                    by_var.setdefault(var, []).append((node, reads))
    ordered = []
    for var, updates in by_var.items():
        if len(updates) < 2:
            continue
        for node, _ in updates:
            for other, reads in updates:
                if other is node:
                    continue
                for r in reads:
                    if f"^{r}" not in node.input and not _in_control_flow(r):
                        node.input.append(f"^{r}")
        ordered.append(var)
    return sorted(ordered)


def shared_updates_note(ordered: list[str]) -> str | None:
    """The note for :func:`order_shared_updates`'s variables (BatchNorm scopes listed once)."""
    if not ordered:
        return None
    scopes = sorted({v.rsplit("/", 1)[0] for v in ordered})
    return ("BatchNorm statistics updated by two or more calls in one run (" + ", ".join(scopes) + "): each update "
            "reads the statistic in an order the graph leaves open, so TF's own result depends on its scheduler "
            "(measured: the float32 and float64 graphs, one thread or TF's default threads, store different results); "
            "parity runs every read before the updates, each update from the statistics the step read (what TF "
            "computes in float64), the same in every run and dtype")
