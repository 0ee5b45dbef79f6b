"""Several train ops run in order in one step (a GAN: ``"train_op": [d_optim, g_optim, g_optim]`` with
``"loss": [d_loss, g_loss, g_loss]`` and, optionally, ``"optimizer": [d_opt, g_opt, g_opt]``): each train op
is one *phase*, run in its own ``session.run`` with the same feed (the batch, the noise ``z`` given as a batch
key, the dropout masks), as a TF1 GAN script runs ``sess.run(d_optim, feed)`` then ``sess.run(g_optim, feed)``.
Per phase: its loss, raw and processed gradients and rate (read before its train op, in the same run), the
parameters its optimizer applies to and their slots (read after it). ``parity.program.port`` names them
``phase<k>/<tensor>`` (docs/own-model.md, "Several optimizers / a hand-written update").

:func:`program_forms` turns the lists into phase 1's objects (what the rest of the capture reads: inputs,
forward outputs on the path to phase 1's loss, dropout, the optimizer's settings) plus :data:`KEY`;
:func:`analyse`, :func:`bind` and :func:`step` are :class:`~.program.TF1Program`'s parts for the phases.
"""

from __future__ import annotations

from typing import Any, Mapping

from parity.errors import ParityError

from .graph import _ancestors
from .optimizer import HAND_WRITTEN_NOTE, find_applies, find_assigns, find_slots, read_apply_ops

__all__ = ["KEY", "program_forms", "take", "analyse", "bind", "step", "hand_written"]

#: the key program_forms adds to the program's dict: [(loss, train op, optimizer or None)] per phase
KEY = "_parity_phases"


def program_forms(objs, where: str):
    """``objs`` with a list of train ops (and of losses, optimizers) as phase 1's objects plus :data:`KEY`;
    any other dict unchanged.

    Raises:
        ParityError: the lists' lengths differ, or a list is empty.
    """
    if not isinstance(objs, Mapping) or not isinstance(objs.get("train_op"), (list, tuple)):
        return objs
    ops = list(objs["train_op"])
    n = len(ops)
    losses, opts = objs.get("loss"), objs.get("optimizer")
    losses = list(losses) if isinstance(losses, (list, tuple)) else [losses] * n
    opts = list(opts) if isinstance(opts, (list, tuple)) else [opts] * n
    if not n or len(losses) != n or len(opts) != n:
        raise ParityError(f"{where}: 'train_op' lists {n} train op(s) run in order in one step; 'loss' (and "
                          f"'optimizer', when a list) must list one per train op, got {len(losses)} loss(es)"
                          + (f", {len(opts)} optimizer(s)" if isinstance(objs.get("optimizer"), (list, tuple)) else ""))
    out = dict(objs)
    out["train_op"], out["loss"], out["optimizer"] = ops[0], losses[0], opts[0]
    if n > 1:
        out[KEY] = list(zip(losses, ops, opts))
    return out


def take(program: Mapping[str, Any]) -> tuple:
    """``(program without KEY, phases or [])``."""
    if KEY not in program:
        return program, []
    program = dict(program)
    return program, program.pop(KEY)


def analyse(phases: list, graph, var_names: dict, where: str, notes: list[str], tf1) -> tuple:
    """``(per-phase names, every trained variable op -> its first apply op, the optimizers' variable ops)``."""
    from .analyse import raw_gradients, train_op_of

    out, trained, owned = [], {}, {}
    for k, (loss, op, opt) in enumerate(phases, 1):
        if not hasattr(loss, "op") or not hasattr(loss, "name"):
            raise ParityError(f"{where}: loss {k} (of 'loss', one per train op) must be a tensor, not {type(loss).__name__}")
        op = train_op_of({"train_op": op}, None, None, graph, notes)
        applied = find_applies(graph, _ancestors([op]), f"{where} (train op {k}, {op.name})")
        processed, _, lr, _, _ = read_apply_ops(applied, var_names)
        slots, mine = find_slots(opt, None, graph, applied, var_names, tf1)
        out.append({"loss": loss.name, "train": op.name, "processed": processed, "lr": lr, "slots": slots,
                    "raw": raw_gradients(applied, var_names, graph, loss, notes),
                    "applied": [var_names[v] for v in applied]})
        for v, a in applied.items():
            trained.setdefault(v, a)
        owned.update(mine)
    notes.append(f"{len(phases)} train ops run in order in one step: phases "
                 + ", ".join(f"{k} ({p['train']})" for k, p in enumerate(out, 1)) + ", compared as phase<k>/...")
    return out, trained, owned


def bind(prog, graph) -> list:
    """Each phase's fetches in the graph that runs: ``{"before", "train", "after"}``."""
    T = graph.get_tensor_by_name
    bound = []
    for p in prog._phases:
        before = {"loss": {"loss": T(p["loss"])}, "gradients": {k: T(n) for k, n in p["raw"].items()},
                  "processed_gradients": {k: T(n) for k, n in p["processed"].items()}}
        if p["lr"] is not None:
            before["learning_rate"] = {"lr": T(p["lr"])}
        after = {"parameters": {n: prog._reads[n] for n in p["applied"]},
                 "slots": {k: prog._reads[n] for k, n in p["slots"].items()}}
        bound.append({"before": {s: d for s, d in before.items() if d}, "train": [graph.get_operation_by_name(p["train"])],
                      "after": {s: d for s, d in after.items() if d}})
    return bound


def step(prog, feed: dict) -> dict:
    """One step: the phases' train ops in order, each in its own run with the same feed; the forward outputs
    and dropout masks of the first run; the state after the last. ``{"forward", "phases", "state"?}``."""
    run = prog.session.run
    out: dict = {"phases": []}
    for k, phase in enumerate(prog._t_phases):
        fetches = {"before": phase["before"], "train": phase["train"] + (prog._train_ops[1:] if k == 0 else [])}
        if k == 0:
            fetches["forward"] = prog._before.get("forward", {})
            prog._dropout_feeds.add_fetches(fetches)
        got = run(fetches, feed)
        if k == 0:
            prog._dropout_feeds.record(got)
            out["forward"] = got["forward"]
        record = {s: dict(d) for s, d in got["before"].items()}
        record.update(run(phase["after"]))
        out["phases"].append(record)
    if "state" in prog._after:
        out["state"] = run(prog._after["state"])
    if prog._post_ops:
        run(prog._post_ops, feed)
        out["constrained"] = run(prog._t_constrained)
    return out


def hand_written(prog, graph, train_deps: set, loss) -> dict:
    """A hand-written update (the train op assigns the variables from their gradients itself): ``{variable op:
    assign op}``, and ``prog``'s optimizer readings set to what can be seen: the raw gradient of each variable
    (the graph's own ``gradients/...`` tensor upstream of the assigned value, else ``tf.gradients``); no
    processed gradient, rate or slot (said in the notes)."""
    from ... import tensorflow
    from .analyse import _raw_gradient

    trained = find_assigns(graph, train_deps)
    prog._processed, prog._apply_type, prog._lr, prog._hyper, prog._nesterov = {}, "hand-written", None, {}, None
    prog._slots, prog._raw = {}, {}
    for v, op in trained.items():
        raw = _raw_gradient(op.inputs[1], v)
        if raw is None:
            with graph.as_default():
                raw = tensorflow().gradients(loss, [v.outputs[0]])[0]
        prog._raw[prog._var_names[v]] = raw.name
    prog._notes.append(HAND_WRITTEN_NOTE)
    return trained
