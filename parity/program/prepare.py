"""Compare two plain training programs (a TF1/Keras program and its PyTorch port) step by step.

The user's files are plain programs plus one function, ``parity_program()``, returning a dict of
the objects the program builds (model, optimizer, loss...). The capture adapters
(``torch_impl/capture/``, ``tf_impl/v1/capture/``, ``tf_impl/v2/capture/``) record every
stage of a step; this module maps the reference's weights onto the port (:mod:`parity.program.mapping`),
runs both through :func:`parity.run.runner.run_case` as two in-memory ports, and returns the same
:class:`~parity.run.result.CaseResult` as the catalogue, so the report, diagnosis and health work
unchanged. numpy only.

The parts: :mod:`parity.program.load` (the user's files), :mod:`parity.program.batches` (batches,
dropout masks), :mod:`parity.program.mapping` (variables and layer outputs), :mod:`parity.program.probes`
(the probes that pair them), :mod:`parity.program.port` (the in-memory ports), :mod:`parity.program.remote`
(``parity diff``: each program captured and stepped in a worker process of its own). The records the capture adapters fill in are :mod:`parity.portkit.program`'s.
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
from parity.program.probes import _outputs, _probe_score

__all__ = ["compare_programs", "prepare", "port_names", "program_case"]


def prepare(reference, port, *, data=None, steps: int = 10, mapping=None, seed: int = 0, log=None,
            dtypes=("float64", "float32"), pool=None, float64_optional: bool = False) -> ProgramRun:
    """Load both programs, capture them once (float64; float32 when the run is float32 only), map the
    variables and the layer outputs. ``pool`` (:class:`parity.program.remote.Pool`): each program is
    captured in its worker process, and this process holds proxies of them. ``float64_optional``: the float64
    runs only measure the float32 envelope (``parity diff --dtype float32``): a float64 probe failure falls back.

    Raises:
        ParityError: bad input (file, keys, kinds, an unresolvable mapping), one line.
        PortError: the user's own code raised.
    """
    ref, prt = load_program(reference), load_program(port)
    ref.seed = prt.seed = seed  # every framework's generators seeded before each build: the same start each run
    ref.side, prt.side = "reference", "port"  # (the same file may be given twice: each side its worker)
    R, P, probe_notes = _capture_both(ref, prt, float32_only=tuple(dtypes) == ("float32",) or float64_optional,
                                      capture=capture if pool is None else pool.capture)
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


def _capture_both(ref, prt, float32_only: bool = False, capture=capture):
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
                     observers=(), workers: bool = False, keep_workers: bool = False, float64_optional: bool = False):
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
        workers: run each program in a worker process of its own (:mod:`parity.program.remote`; files
            only: a function given runs here). ``parity diff`` passes ``PARITY_WORKERS``' setting (on unless
            "0"); the library's default is off, as :func:`~parity.run.runner.run_case`'s.
        keep_workers: leave the workers running for the caller (``result.pool``: its facts; the caller
            closes it); else they stop before this returns.

    The result also carries ``.mapping``, ``.notes``, ``.program_run`` and ``.pool`` (None in-process).
    """
    dtypes = tuple(dtypes)
    for d in dtypes:
        if d not in ("float64", "float32"):
            raise ParityError(f"unknown dtype {d!r}; expected float64 or float32")
    if steps < 1:
        raise ParityError("steps must be >= 1")
    from parity.program import remote

    files = all(isinstance(p, (str, os.PathLike)) for p in (reference, port))
    pool = remote.Pool(os.fspath(reference), os.fspath(port)) if workers and files else None
    try:
        result = _compare(reference, port, data, steps, dtypes, mapping, save_mapping, seed, name, observers, pool,
                          float64_optional)
    except BaseException:
        if pool is not None:
            pool.close()
        raise
    if pool is not None and not keep_workers:
        pool.close()
    result.pool = pool if keep_workers else None
    return result


def program_case(run: ProgramRun, steps: int, seed: int, dtypes, name: str | None = None, cost=None):
    """The case ``parity diff`` runs for a prepared pair (also ``parity record PROG.py``'s: the same name,
    ports, seed and error model, so a comparison of two recordings is diff's own)."""
    from parity.cases.case import Case, Data

    rp, pp = port_names(run)
    return Case(
        name=name or f"diff:{os.path.splitext(run.reference.label)[0]}-vs-{os.path.splitext(run.port.label)[0]}",
        module="(program)",
        title=f"{run.reference.path} vs {run.port.path}",
        ports=(rp, pp),
        params={},
        data=Data("program"),  # the batches prepared from the program, given to run_case
        steps=steps,
        seed=seed,
        cost=run.cost if cost is None else cost,
        dtypes=tuple(dtypes),
        tags=("program",),
    )


def _compare(reference, port, data, steps, dtypes, mapping, save_mapping, seed, name, observers, pool,
             float64_optional=False):
    from parity.program.mapping import AmbiguousMapping, save_mapping as _save
    from parity.run.runner import run_case

    try:
        run = prepare(reference, port, data=data, steps=steps, mapping=mapping, seed=seed, dtypes=dtypes, pool=pool,
                      float64_optional=float64_optional)
    except AmbiguousMapping as exc:
        if not save_mapping or exc.draft is None:
            raise
        # --save-mapping writes the draft (the pairs found, a "TODO" for each variable without a partner)
        _save(exc.draft, save_mapping)
        raise ParityError(f"{exc} (a draft to start from: {save_mapping})") from None
    if save_mapping:
        _save(run.mapping, save_mapping)
    case = program_case(run, steps, seed, dtypes, name)
    rp, pp = case.ports
    sides = {rp: "reference", pp: "port"}
    if pool is None:
        modules = {rp: ProgramPorts(run, "reference"), pp: ProgramPorts(run, "port")}
    else:  # each side's port is built and stepped in its program's worker (parity.run.remote_runs.RemoteRun)
        from parity.program.remote import register, unregister

        register(case.name, sides, run, pool)
        modules = {}
    try:
        result = run_case(case, dtypes=dtypes, modules=modules, sources={rp: run.reference.path, pp: run.port.path},
                          pairs="reference", observers=observers, batches=run.batches, workers=pool is not None)
    finally:
        if pool is not None:
            unregister(case.name, sides)
    if pool is not None:  # what the steps decided there (a scheduler's unit) joins the run's notes
        for side in ("reference", "port"):
            run.notes.extend(n for n in pool.notes(side) if n not in run.notes)
    result.mapping = run.mapping
    result.notes = run.notes
    result.program_run = run
    return result
