"""``parity record PROG.py``: a user's program recorded on one machine, compared with its port's recording anywhere.

``parity diff REF.py PORT.py`` runs both programs itself. Where they cannot run on one machine (the
reference in TensorFlow on a CPU machine, the port in torch on a GPU machine without TensorFlow), each is
recorded where it runs and the two recordings are compared (:mod:`parity.program.record_compare`):

1. ``parity record REF.py --port PORT.py -o ref.trace`` (a machine where both import: the port is only
   *probed*, one forward pass on the CPU): :func:`parity.program.prepare.prepare` decides what ``diff`` decides
   (the mapping, the reference's initial weights, the batches with their dropout masks and noise draws, the
   error model's cost), then the reference's runs are recorded: each dtype, and the conditioning run (or the
   float32 shadow of a float64-only recording) the envelope needs; the plan and both programs' facts go in
   the file too (:mod:`parity.program.record_file`).
2. ``parity record PORT.py --against ref.trace -o port.trace`` (the port's machine,
   ``PARITY_TORCH_DEVICE=cuda``): the port loads the plan's weights through the plan's mapping and is fed
   the plan's batches, streamed from the file; its runs in each dtype are recorded.
3. ``parity compare ref.trace port.trace``: diff's comparison of the two, envelope included: the same
   verdict, first divergence and figures as ``parity diff`` gives.

Each program runs in worker processes of its own, as under ``diff`` (``PARITY_WORKERS=0``: here).
"""

from __future__ import annotations

import json
import os
import uuid

import numpy as np

from parity.errors import ParityError
from parity.program.record_file import PLAN, ProgramTraceWriter, RunReader, program_info, source_digest
from parity.run.lockstep import Lockstep

__all__ = ["record_reference", "record_port", "EPILOGUE", "case_json", "case_from_json", "plain"]

#: the stream whose end record carries what is known only after the run: notes, facts, seconds
EPILOGUE = "epilogue"


def plain(value):
    """``value`` as plain JSON data (numpy scalars and arrays as numbers and lists, tuples as lists)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def case_json(case) -> dict:
    c = case.cost
    return {"name": case.name, "title": case.title, "ports": list(case.ports), "steps": case.steps, "seed": case.seed,
            "dtypes": list(case.dtypes), "cost": {"depth": c.depth, "reduction": c.reduction, "growth": c.growth,
                                                   "condition": c.condition, "floors": dict(c.floors)}}


def case_from_json(data: dict, where: str):
    from parity.cases.case import Case, Cost, Data

    try:
        cost = Cost(**data["cost"])
        return Case(name=str(data["name"]), module="(program)", title=str(data["title"]), ports=tuple(data["ports"]),
                    params={}, data=Data("program"), steps=int(data["steps"]), seed=int(data["seed"]), cost=cost,
                    dtypes=tuple(data["dtypes"]), tags=("program",))
    except (KeyError, TypeError, ValueError) as exc:
        raise ParityError(f"{where}: the recording's case is malformed ({type(exc).__name__}: {exc})") from None


class _Recording(Lockstep):
    """:class:`~parity.run.lockstep.Lockstep` with one program's runs and no comparison: every stream it steps
    (each dtype, the conditioning run, the float32 shadow) is written to ``writer`` as it arrives."""

    def __init__(self, *args, writer: ProgramTraceWriter, **kwargs):
        super().__init__(*args, **kwargs)
        self.writer = writer

    def _record(self, run, port, dtype) -> None:
        super()._record(run, port, dtype)
        self.writer.add(dtype, dict(run.manifest), run.initial)

    def open_extra_runs(self) -> None:
        super().open_extra_runs()
        for name, extra in (("conditioning", self.cond_run), ("shadow", self.shadow)):
            if extra is not None:
                self.writer.add(name, dict(extra[1].manifest), extra[1].initial)

    def _compare(self, steps: dict, moved, shadowed) -> None:
        for key, step in steps.items():
            self.live[key].add(step)
            for obs in self.observers:
                obs.step(self.case.name, key[1], key[0], step)
            self.writer.step(key[0], step)
        if moved is not None and self.cond_run is not None:
            self.writer.step("conditioning", moved)
        if shadowed is not None and self.shadow is not None:
            self.writer.step("shadow", shadowed)


def _run(case, label: str, side: str, run, pool, writer, *, conditioning: bool, observers, batches) -> dict:
    """Step one side's program through every dtype of ``case`` (and the envelope's extra run when
    ``conditioning``), writing each stream; return ``{dtype: seconds}``. A run that fails is exit 3."""
    from parity.program.port import ProgramPorts
    from parity.run.result import cannot_run_dtype

    program = run.reference if side == "reference" else run.port
    if pool is None:
        modules = {label: ProgramPorts(run, side)}
    else:
        from parity.program.remote import register

        register(case.name, {label: side}, run, pool)
        modules = {}
    rec = _Recording(case, [label], list(case.dtypes), modules=modules, sources={label: program.path}, pairs="reference",
                     keep="window", window=0, trace_dir=None, summary=writer.summary, observers=observers,
                     workers=pool is not None, conditioning=conditioning, writer=writer)
    from parity.cases.data import given_batches

    try:
        try:
            rec.open_ports()
            rec.open_extra_runs()
            rec.run(given_batches(case, batches, "float64"))
        except BaseException:
            rec.close(complete=False)
            raise
        rec.close()
        result = rec.finish()
    finally:
        if pool is not None:
            from parity.program.remote import unregister

            unregister(case.name, {label: side})
    errors = [e for per in result.errors.values() for e in per.values()]
    if errors:
        first = errors[0]
        if cannot_run_dtype(first):
            raise ParityError(f"{program.path} cannot run in every dtype asked ({first}); record with --dtype the ones it runs in")
        raise first
    if case.dtypes == ("float64", "float32") and conditioning and rec.cond_run is None:
        raise ParityError(f"{program.path}: the envelope's conditioning run could not be opened; record again, or "
                          "with --dtype float64 only")
    return {d: result.seconds.get(f"{label}/{d}") for d in case.dtypes}


def _pool(reference: str, port: str):
    from parity.program import remote

    return remote.Pool(os.fspath(reference), os.fspath(port)) if remote.enabled() else None


def record_reference(reference: str, port: str, output: str, *, steps: int, dtypes, seed: int = 0, mapping=None,
                     save_mapping: str | None = None, summary: bool = False, builds: int = 1, observers=()) -> dict:
    """Record the reference program (step 1 of the module's workflow); return the recording's info."""
    from parity.program.mapping import AmbiguousMapping, save_mapping as _save
    from parity.program.prepare import prepare, program_case

    pool = _pool(reference, port)
    writer = None
    try:
        try:
            run = prepare(reference, port, steps=steps, mapping=mapping, seed=seed, dtypes=dtypes, pool=pool)
        except AmbiguousMapping as exc:
            if not save_mapping or exc.draft is None:
                raise
            _save(exc.draft, save_mapping)
            raise ParityError(f"{exc} (a draft to start from: {save_mapping})") from None
        if save_mapping:
            _save(run.mapping, save_mapping)
        case = program_case(run, steps, seed, dtypes)
        rp, pp = case.ports
        info = {"role": "reference", "id": uuid.uuid4().hex, "case": case_json(case), "reference": run.reference.path,
                "port": run.port.path, "reference_framework": run.reference.framework,
                "port_framework": run.port.framework, "port_digest": source_digest(run.port.path),
                "mapping": json.dumps(run.mapping.to_json()), "notes": list(run.notes), "constrained": bool(run.constrained),
                "summary": bool(summary), "dtypes": list(case.dtypes), "labels": [rp, pp]}
        writer = ProgramTraceWriter(output, info, summary=summary)
        seconds = _run(case, rp, "reference", run, pool, writer, conditioning=True, observers=observers,
                       batches=_planned(writer, run))
        notes = list(run.notes) + [n for n in (pool.notes("reference") if pool else []) if n not in run.notes]
        facts = _facts(run, pool, builds)
        writer.close(complete=True, end={EPILOGUE: {"notes": notes, "facts": facts, "seconds": seconds,
                                                     "streams": list(writer.counts)}})
        return info
    except BaseException:
        if writer is not None:
            writer.close(complete=False)
        raise
    finally:
        if pool is not None:
            pool.close()


def _planned(writer: ProgramTraceWriter, run):
    """The batches, each written to the plan stream as it is fed (the stream opened with the first, after the
    main stream: the plan's initial record holds the reference's initial weights, float64)."""
    for batch in run.batches:
        if PLAN not in writer.counts:
            writer.add(PLAN, {"kind": "plan"}, run.initial)
        writer.step(PLAN, {"inputs": batch})
        yield batch


def _facts(run, pool, builds: int):
    """Both programs' facts, read as ``parity diff`` reads them (each captured afresh, in its worker); a dict
    with the reason under ``"error"`` when they cannot be read (the comparison still stands)."""
    from parity.program.facts import program_facts

    capture = (lambda program, dtype: pool.capture(program, dtype, phase="while its facts were read")) if pool else None
    try:
        return plain(program_facts(run, builds=builds, capture=capture))
    except ParityError as exc:
        return {"error": f"the programs' facts could not be read: {exc}"}
    except Exception as exc:  # noqa: BLE001 -- parity's own bug in reading facts must not lose the recording
        return {"error": f"the programs' facts could not be read (a bug in parity, please report it): "
                         f"{type(exc).__name__}: {exc}"}


def record_port(port: str, against: str, output: str, *, summary: bool | None = None, observers=()) -> dict:
    """Record the port program against the reference's recording (step 2 of the module's workflow)."""
    from parity.program.load import Program, load_program
    from parity.program.mapping import Mapping_
    from parity.program.port import ProgramRun

    info = program_info(against)
    if info is None or info.get("role") != "reference":
        raise ParityError(f"--against {against}: not a reference program's recording (record it with "
                          "'parity record REF.py --port PORT.py -o REF.trace')")
    where = f"--against {against}"
    case = _case(info, where)
    plan = RunReader(against, PLAN)
    try:
        initial = dict(plan.initial)
    finally:
        plan.close()
    prt = load_program(port)
    prt.seed, prt.side = case.seed, "port"
    if prt.framework != info.get("port_framework"):
        raise ParityError(f"{port} is a {prt.framework} program; {against} was recorded with a "
                          f"{info.get('port_framework')} port ({info.get('port')})")
    ref = Program(path=str(info["reference"]), framework=str(info["reference_framework"]), build=None)
    ref.side = "reference"
    mapping = Mapping_.from_json(json.loads(info["mapping"]), where=f"{where}: mapping")
    run = ProgramRun(ref, prt, mapping, initial, [], list(info.get("notes", [])), constrained=bool(info.get("constrained")))
    notes = []
    digest = source_digest(port)
    if info.get("port_digest") and digest != info["port_digest"]:
        notes.append(f"{port} is not the file the reference was recorded with ({info.get('port')}): its mapping "
                     "and batches were decided with that one")
    pool = _pool(ref.path, port)
    summary = bool(info.get("summary")) if summary is None else summary
    rp, pp = case.ports
    out = {"role": "port", "against": info["id"], "case": info["case"], "reference": ref.path, "port": prt.path,
           "mapping": info["mapping"], "summary": summary, "dtypes": list(case.dtypes), "labels": [rp, pp]}
    writer = ProgramTraceWriter(output, out, summary=summary)
    try:
        _check_port(run, pool)
        seconds = _run(case, pp, "port", run, pool, writer, conditioning=False, observers=observers,
                       batches=_batches_of(against))
        step_notes = [n for n in (pool.notes("port") if pool else run.notes) if n not in run.notes]
        writer.close(complete=True, end={EPILOGUE: {"notes": notes + step_notes, "seconds": seconds,
                                                     "streams": list(writer.counts)}})
        return out
    except BaseException:
        writer.close(complete=False)
        raise
    finally:
        if pool is not None:
            pool.close()


def _case(info: dict, where: str):
    if not isinstance(info.get("case"), dict):
        raise ParityError(f"{where}: the recording has no case")
    return case_from_json(info["case"], where)


def _batches_of(path: str):
    """The plan's batches, read one at a time from the reference's recording."""
    reader = RunReader(path, PLAN)
    for step in reader.steps():
        yield step["inputs"]
    if reader.interrupted is not None:
        raise ParityError(f"{path}: the plan's batches are cut off after {reader.interrupted}")


def _check_port(run, pool) -> None:
    """The port has every variable the recorded mapping names (else it is not the port the plan was made for)."""
    from parity.program.load import capture

    P = pool.capture(run.port, "float64") if pool is not None else capture(run.port, "float64")
    try:
        names = {s.name for s in P.parameter_specs()}
    finally:
        P.close()
    missing = [e.port for e in run.mapping.params if e.port not in names]
    if missing:
        raise ParityError(f"{run.port.path} lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} that the "
                          f"recorded mapping names (its variables: {', '.join(sorted(names)[:8])} ...): record the "
                          "reference again with this port (--port)")
