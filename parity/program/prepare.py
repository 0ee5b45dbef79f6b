"""Compare two plain training programs (a TF1/Keras program and its PyTorch port) step by step.

The user's files are plain programs plus one function, ``parity_program()``, returning a dict of
the objects the program builds (model, optimizer, loss...). The capture adapters
(``torch_impl/capture/``, ``tf_impl/v1/capture/``, ``tf_impl/v2/capture/``) record every
stage of a step; this module maps the reference's weights onto the port (:mod:`parity.program.mapping`),
runs both through :func:`parity.run.runner.run_case` as two in-memory ports, and returns the same
:class:`~parity.run.result.CaseResult` as the catalogue, so the report, diagnosis and health work
unchanged. numpy only.

The parts: :mod:`parity.program.load` (the user's files), :mod:`parity.program.batches` (batches,
dropout masks), :mod:`parity.program.mapping` (variables and layer outputs), :mod:`parity.program.port`
(the in-memory ports). The records the capture adapters fill in are :mod:`parity.portkit.program`'s.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from parity.errors import ParityError, PortError
from parity.program.batches import MASK_PREFIX, add_masks, as_batches, cost_of, draw_batches
from parity.portkit.program import DtypeError
from parity.program.load import at_users_line, capture, load_program, program_error
from parity.program.port import ProgramPorts, ProgramRun

__all__ = ["compare_programs", "prepare", "port_names"]


def prepare(reference, port, *, data=None, steps: int = 10, mapping=None, seed: int = 0, log=None,
            dtypes=("float64", "float32")) -> ProgramRun:
    """Load both programs, capture them once (float64; float32 when the run is float32 only), map the
    variables and the layer outputs.

    Raises:
        ParityError: bad input (file, keys, kinds, an unresolvable mapping), one line.
        PortError: the user's own code raised.
    """
    ref, prt = load_program(reference), load_program(port)
    ref.seed = prt.seed = seed  # every framework's generators seeded before each build: the same start each run
    R, P, probe_notes = _capture_both(ref, prt, float32_only=tuple(dtypes) == ("float32",))
    try:
        batches = _batches(R, P, ref, data, steps, seed)
        first = batches[0]
        # probes: call order, flatten orders, dropout sites (masks={} = identity, deterministic)
        R.forward(first, {})
        P.forward(first, {})
        m = _variables(R, P, ref, prt, mapping, first)
        initial = {k: np.asarray(v, dtype=np.float64) for k, v in R.parameters().items()}
        P.load(m.port_weights(initial))
        # the matching probe drives dropout with a real mask (the same on both sides): an identity
        # dropout would equal its input and could pair with the layer before it
        probe = [dict(first)]
        add_masks(R.dropout_sites(), P.dropout_sites(), probe, np.random.default_rng([seed, 3]), [])
        pmasks = {int(k[len(MASK_PREFIX):]): v for k, v in probe[0].items() if k.startswith(MASK_PREFIX)}
        ar, ap = R.forward(first, pmasks), P.forward(first, pmasks)
        _outputs(m, R, P, ar, ap)
        notes = list(dict.fromkeys(probe_notes + [f"reference: {n}" for n in getattr(R, "notes", lambda: [])()]
                                   + [f"port: {n}" for n in getattr(P, "notes", lambda: [])()] + list(m.notes)))
        add_masks(R.dropout_sites(), P.dropout_sites(), batches, np.random.default_rng([seed, 2]), notes)
        run = ProgramRun(ref, prt, m, initial, batches, notes, constrained=bool(getattr(R, "has_constraint", False)))
        run.cost = cost_of(m, ar, first)
        return run
    except PortError as exc:  # an adapter's call of the user's code: at the user's line where it is theirs
        raise at_users_line(exc, (ref, prt), "in parity's probe forward pass") from exc.__cause__
    except ParityError:
        raise
    except Exception as exc:  # the user's code raised in the probe (a layer of theirs): exit 3, their line
        err = program_error(exc, (ref, prt), "in parity's probe forward pass")
        if err is None:
            raise
        raise err from exc
    finally:
        R.close()
        P.close()


def _capture_both(ref, prt, float32_only: bool = False):
    """Capture both programs in float64, or in float32 where one cannot run in float64 (a note says so); in a
    float32-only run any failure of the float64 probe falls back to float32, so it cannot stop that run."""
    probe_notes: list[str] = []
    R = P = None
    for probe_dtype in ("float64", "float32"):  # a program that cannot run in float64 is probed in float32
        try:
            R = capture(ref, probe_dtype)
            P = capture(prt, probe_dtype)
            break
        except Exception as exc:
            if not isinstance(exc, DtypeError) and not (float32_only and probe_dtype == "float64"):
                if R is not None:
                    R.close()
                raise
            if R is not None:
                R.close()
            R = P = None
            if probe_dtype == "float32":
                raise
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            probe_notes.append(f"mapped in float32: {first}")
        except BaseException:
            if R is not None:
                R.close()
            raise
    return R, P, probe_notes


def _batches(R, P, ref, data, steps: int, seed: int) -> list:
    """The batches both programs are fed: the user's (``data``, or the reference's ``"data"``), else drawn
    from the programs' input shapes (integer labels as many classes as the reference's last output has)."""
    source = data if data is not None else getattr(R, "data_source", lambda: None)()
    if source is not None:
        return as_batches(source, steps, ref.path)
    specs = dict(P.input_specs()) if hasattr(P, "input_specs") else {}
    specs.update(R.input_specs() if hasattr(R, "input_specs") else {})
    if not specs:
        raise ParityError(f"{ref.path}: no 'data' in parity_program()'s dict and no input shapes to draw batches from: "
                          "add \"data\": a function returning batches ({key: array})")
    # an integer label placeholder of unknown rank (tf.placeholder(tf.int32, shape=(None))): one label per example
    specs = {k: ((None,) if sh is None and np.issubdtype(np.dtype(dt), np.integer) else sh, dt) for k, (sh, dt) in specs.items()}
    rng = np.random.default_rng([seed, 1])
    float_specs = {k: v for k, v in specs.items() if not np.issubdtype(np.dtype(v[1]), np.integer)}
    probe = draw_batches(float_specs, 1, rng, None, 8)[0]
    classes = None
    if len(float_specs) != len(specs):
        acts = R.forward(dict(probe, **{k: np.zeros([8 if s is None else s for s in sh], dtype=dt)
                                      for k, (sh, dt) in specs.items() if k not in float_specs}), {})
        last = list(acts.values())[-1] if acts else None
        classes = int(np.shape(last)[-1]) if last is not None and np.ndim(last) >= 1 else None
    ranges = {}  # integer inputs that feed an embedding lookup: ids below its table's size (the smaller of the two)
    for prog in (P, R):
        for k, bound in (prog.input_ranges() if hasattr(prog, "input_ranges") else {}).items():
            ranges[k] = bound if k not in ranges else (min(ranges[k], bound) if ranges[k] and bound else None)
    return draw_batches(specs, steps, np.random.default_rng([seed, 1]), classes, 8, ranges)


def _variables(R, P, ref, prt, mapping, probe_batch=None):
    """The variable mapping: automatic (by structure), or the user's file / object, checked against both programs.
    Same-shape candidates the layers cannot decide are tried on a probe forward of ``probe_batch``."""
    from parity.program.mapping import Mapping_, auto_map, load_mapping

    if mapping is None:
        flat = getattr(P, "flatten_inputs", lambda: {})()
        rflat = getattr(R, "flatten_inputs", lambda: {})()
        score = None if probe_batch is None else _probe_score(R, P, probe_batch)
        try:
            m = auto_map(R.parameter_specs(), ref.framework, P.parameter_specs(), prt.framework,
                         ref_flatten=rflat, port_flatten=flat, reference_file=ref.path, port_file=prt.path, score=score)
        finally:
            if score is not None:
                score.restore()
        return m
    m = mapping if isinstance(mapping, Mapping_) else load_mapping(os.fspath(mapping))
    _check_mapping(m, R, P, ref.path, prt.path)
    return m


def _probe_score(R, P, batch):
    """``score(mapping)``: how many layer outputs (by value) and the loss agree when the port runs from the
    reference's weights mapped by ``mapping`` (the evidence that decides between same-shape candidates).

    The probe's weights are the reference's, each value scaled and shifted by a few per cent at random, so
    that layers initialised alike (BatchNorm's gamma = 1) tell apart; ``score.restore()`` puts the
    reference's own weights back."""
    from parity.program.outputs import kinds_of, pair_outputs, same_output

    cache: dict = {}

    def perturbed() -> dict:
        rng = np.random.default_rng(20)
        kinds = {s.name: s.kind for s in R.parameter_specs()}
        out = {}
        for k, w in cache["original"].items():
            scale = float(np.mean(np.abs(w))) if np.size(w) else 0.0
            w = w * (1 + 0.25 * rng.uniform(-1, 1, np.shape(w)))
            if kinds.get(k) != "bn_var":  # a variance stays positive
                w = w + 0.05 * (scale or 0.1) * rng.uniform(-1, 1, np.shape(w))
            out[k] = w
        return out

    def score(m) -> float:
        if "ref" not in cache:
            cache["original"] = {k: np.asarray(v, dtype=np.float64) for k, v in R.parameters().items()}
            cache["initial"] = perturbed()
            R.load(cache["initial"])
            cache["ref"] = R.forward(batch, {})
            cache["loss"] = getattr(R, "probe_loss", lambda: None)()
        P.load(m.port_weights(cache["initial"]))
        ap = cache["port"] = P.forward(batch, {})
        # outputs paired by structure (kind, shape, call order), as the comparison will pair them
        pairs = pair_outputs(cache["ref"], ap, kinds_of(R), kinds_of(P)).pairs
        agree = sum(same_output(cache["ref"][a], ap[b]) for a, b in pairs)
        lp = getattr(P, "probe_loss", lambda: None)()
        return agree + (cache["loss"] is not None and lp is not None and same_output(cache["loss"], lp))

    def restore() -> None:
        if "original" in cache:
            R.load(cache["original"])

    score.restore = restore
    # the layer outputs' names in call order, both sides (evidence that creation order is call order)
    score.calls = lambda: (list(cache["ref"]), list(cache["port"])) if "port" in cache else None
    return score


def _outputs(m, R, P, ar: dict, ap: dict) -> None:
    """Pair the layer outputs (``m.forward``) by structure (kind, shape, call order: :mod:`parity.program.outputs`),
    the probe's values only confirming, unless the mapping names them; outputs cut at different places (a
    softmax inside one side's last layer) are left out, and every output left out gets a reason in the notes."""
    from parity.program.outputs import (apply_forward_edits, kinds_of, pair_outputs, recording_notes, same_output,
                                       unpaired_notes)

    m.notes.extend([f"reference: {n}" for n in recording_notes(R)] + [f"port: {n}" for n in recording_notes(P)])

    if m.forward:
        bad = [f"{a} -> {b}" for a, b in m.forward if a not in ar or b not in ap]
        if bad:
            raise ParityError(f"mapping: layer outputs not found: {', '.join(bad)}; reference outputs: {', '.join(ar)}; port outputs: {', '.join(ap)}")
        return
    kr, kp = kinds_of(R), kinds_of(P)
    pairing = pair_outputs(ar, ap, kr, kp)
    pairs = pairing.pairs
    if getattr(m, "forward_edits", None):  # the mapping file's drop / add / re-pair entries
        pairs = apply_forward_edits(pairs, m.forward_edits, list(ar), list(ap))
    m.notes.extend(unpaired_notes(pairing, ar, ap, kr, kp))
    left_r = [a for a in ar if a not in {x for x, _ in pairs}]
    left_p = [b for b in ap if b not in {y for _, y in pairs}]

    def leave_out(drop, why: str) -> None:
        nonlocal pairs
        if drop:
            pairs = [p for p in pairs if p not in drop]
            left_r.extend(a for a, _ in drop)
            left_p.extend(b for _, b in drop)
            m.notes.append("layer outputs " + ", ".join(f"{a}/{b}" for a, b in drop) + why)

    lr_, lp_ = getattr(R, "probe_loss", lambda: None)(), getattr(P, "probe_loss", lambda: None)()
    if lr_ is not None and lp_ is not None and same_output(lr_, lp_):
        # the two compute the same loss from the same weights: a pair of outputs that differ
        # here is two different cuts of the network (softmax inside a Dense vs logits), not a bug
        leave_out([(a, b) for a, b in pairs if not same_output(ar[a], ap[b])],
                  " differ at the probe while the losses agree: different cuts of the network (e.g. a softmax "
                  "inside a Dense layer), not compared")
    # a softmax / sigmoid inside one side's last layer (Keras Dense(activation="softmax")) vs logits
    # on the other: the same layer cut differently; not compared (the loss stage compares them)
    leave_out([(a, b) for a, b in pairs if not same_output(ar[a], ap[b]) and _activated(ar[a], ap[b])],
              ": one is the softmax (or sigmoid) of the other (an activation inside a Dense layer vs logits): not compared")
    m.forward = pairs
    if left_r:
        m.not_compared["reference layer outputs"] = left_r
    if left_p:
        m.not_compared["port layer outputs"] = left_p


def _activated(a, b) -> bool:
    """Whether one array is the softmax or the sigmoid (over the last axis) of the other."""
    from parity.program.outputs import same_output

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim < 1:
        return False

    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def sigmoid(z):
        return 0.5 * (1.0 + np.tanh(0.5 * z))

    with np.errstate(all="ignore"):
        return any(same_output(f(x), y) for f in (softmax, sigmoid) for x, y in ((a, b), (b, a)))


def _check_mapping(m, R, P, ref_path: str, port_path: str) -> None:
    """A mapping file against both programs: every name exists, each side's layout ops meet in one canonical
    shape, the ``shape`` stated is that shape, and every trainable reference variable is mapped (one line)."""
    rs = {s.name: s for s in R.parameter_specs()}
    ps = {s.name: s for s in P.parameter_specs()}
    problems = [f"reference has no {e.reference!r}" for e in m.params if e.reference not in rs]
    problems += [f"port has no {e.port!r}" for e in m.params if e.port not in ps]
    if problems:
        raise ParityError(f"mapping does not fit the programs: {'; '.join(problems)}. Reference ({ref_path}): "
                          f"{', '.join(rs)}. Port ({port_path}): {', '.join(ps)}")
    from parity.program.mapping import canon_shape, used_once

    used_once(m.params, "mapping")
    for e in m.params:
        try:
            a = canon_shape(rs[e.reference].shape, e.reference_ops)
            b = canon_shape(ps[e.port].shape, e.port_ops)
        except ParityError as exc:
            raise ParityError(f"mapping: {e.reference} -> {e.port}: {str(exc).removeprefix('mapping: ')}") from None
        if a != b:
            raise ParityError(f"mapping: {e.reference} {list(rs[e.reference].shape)} -> {list(a)} and {e.port} "
                              f"{list(ps[e.port].shape)} -> {list(b)} do not meet in one shape")
        if getattr(e, "shape_given", True) and tuple(e.shape) != a:
            raise ParityError(f"mapping: {e.reference} -> {e.port} states 'shape' {list(e.shape)}, but its layout ops "
                              f"give {list(a)} (the canonical shape is not an option: fix the ops, or the shape)")
        e.shape, e.shape_given = a, True
    missing = [n for n, s in rs.items() if s.trainable and n not in m.by_reference()]
    if missing:
        raise ParityError(f"mapping leaves the reference's trainable {', '.join(missing)} unmapped")
    names = {e.canonical for e in m.params}
    unknown = [n for n in m.leave_out if n not in names and n.rpartition("/")[0] not in names]
    if unknown:
        raise ParityError(f"mapping: 'leave_out' names {', '.join(unknown)}, not a pair (or pair/slot) of the mapping; "
                          f"its pairs: {', '.join(sorted(names))}")
    if m.leave_out:
        m.notes.append("left out by the mapping file, not compared at any step: " + ", ".join(m.leave_out))


def port_names(run: ProgramRun) -> tuple[str, str]:
    """The two port labels of the case: their frameworks (the port's gets ':port' when both are the same)."""
    a, b = run.reference.framework, run.port.framework
    return (a, f"{b}:port") if a == b else (a, b)


def compare_programs(reference, port, *, data=None, steps: int = 10, dtypes: Iterable[str] = ("float64", "float32"),
                     mapping=None, save_mapping: str | None = None, seed: int = 0, name: str | None = None,
                     observers=()):
    """Compare a program against its port, step by step, in each dtype; return a CaseResult.

    Args:
        reference: the reference program's file (or its ``parity_program`` function).
        port: the port's file (or function).
        data: batches (an iterable of dicts, or a function returning one); default: the reference's
            ``"data"``, else drawn from its input shapes.
        steps: training steps.
        dtypes: "float64" and/or "float32".
        mapping: a mapping file (or :class:`parity.program.mapping.Mapping_`) instead of the automatic one.
        save_mapping: write the mapping used to this JSON file.
        seed: seeds the drawn batches and the dropout masks.
        name: the case name in the report (default: ``diff:<ref>-vs-<port>``).
        observers: per-step hooks handed to :func:`~parity.run.runner.run_case` (``--tensorboard``).

    The result also carries ``.mapping``, ``.notes`` and ``.program_run``.
    """
    from parity.cases.case import Case, Data
    from parity.program.mapping import save_mapping as _save
    from parity.run.runner import run_case

    dtypes = tuple(dtypes)
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise ParityError(f"unknown dtype {d!r}; expected float64 or float32")
    if steps < 1:
        raise ParityError("steps must be >= 1")
    from parity.program.mapping import AmbiguousMapping

    try:
        run = prepare(reference, port, data=data, steps=steps, mapping=mapping, seed=seed, dtypes=dtypes)
    except AmbiguousMapping as exc:
        if not save_mapping or exc.draft is None:
            raise
        # --save-mapping writes the draft (the pairs found, a "TODO" for each variable without a partner)
        _save(exc.draft, save_mapping)
        raise ParityError(f"{exc} (a draft to start from: {save_mapping})") from None
    if save_mapping:
        _save(run.mapping, save_mapping)
    rp, pp = port_names(run)
    case = Case(
        name=name or f"diff:{os.path.splitext(run.reference.label)[0]}-vs-{os.path.splitext(run.port.label)[0]}",
        module="(program)",
        title=f"{run.reference.path} vs {run.port.path}",
        ports=(rp, pp),
        params={},
        data=Data("program"),  # the batches prepared from the program, given to run_case below
        steps=steps,
        seed=seed,
        cost=run.cost,
        dtypes=dtypes,
        tags=("program",),
    )
    result = run_case(case, dtypes=dtypes, modules={rp: ProgramPorts(run, "reference"), pp: ProgramPorts(run, "port")},
                      sources={rp: run.reference.path, pp: run.port.path}, pairs="reference", observers=observers,
                      batches=run.batches)
    result.mapping = run.mapping
    result.notes = run.notes
    result.program_run = run
    return result
