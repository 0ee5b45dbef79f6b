"""``parity compare REF.trace PORT.trace`` of two programs' recordings (:mod:`parity.program.record`): ``parity diff``'s
comparison, read from the files (numpy only).

The comparison is ``diff``'s own step loop, :class:`parity.run.lockstep.Lockstep` (the pairing, each program's
float64 -> float32 :class:`~parity.comparison.envelope.Drift`, the reference's conditioning run or float32
shadow, the comparators, windows and health series), whose runs are read from the two files instead of run:
each run a stream of its file (:class:`~parity.program.record_file.RunReader`), one step at a time. The result
is the :class:`~parity.run.result.CaseResult` ``diff`` builds, so the report, the diagnosis and the exit code
are diff's. Memory: the windows and one step of each run, never the traces.
"""

from __future__ import annotations

import json

from parity.errors import ParityError
from parity.program.record_file import MAIN, RunReader, program_info, read_end

__all__ = ["compare_recordings", "is_recording"]

#: manifest keys a trace file adds to a run's manifest (not the run's own: stripped before comparing)
_ADDED = ("format", "summary", MAIN)


def is_recording(path: str) -> bool:
    """Whether ``path`` is a program's recording (``parity record PROG.py``)."""
    return program_info(path) is not None


def _infos(ref: str, port: str) -> tuple[dict, dict]:
    ri, pi = program_info(ref), program_info(port)
    if ri is None or pi is None:
        plain = ref if ri is None else port
        raise ParityError(f"{plain} is a case's trace, the other a program's recording: compare two recordings "
                          "of 'parity record PROG.py' (or two traces of 'parity record CASE')")
    if ri.get("role") == "port" and pi.get("role") == "reference":
        raise ParityError(f"{ref} is the port's recording and {port} the reference's: give the reference first")
    if ri.get("role") != "reference" or pi.get("role") != "port":
        raise ParityError(f"{ref} ({ri.get('role')}) and {port} ({pi.get('role')}): compare a reference's recording "
                          "with a port's recorded against it")
    if pi.get("against") != ri.get("id"):
        raise ParityError(f"{port} was recorded against another recording of the reference than {ref} (the weights, "
                          "batches and mapping it was fed are not this file's): record the port again with "
                          f"--against {ref}")
    return ri, pi


class _Replay:
    """One recorded run behind the interface :class:`~parity.run.lockstep.Lockstep` steps (``manifest``,
    ``initial``, ``step(batch)``, ``seconds``, ``close()``): each step is the stream's next, read from the file."""

    def __init__(self, path: str, run, dtype: str, seconds=None):
        self.path, self.dtype, self.steps = path, dtype, 0
        self.reader = RunReader(path, run)
        self.manifest = {k: v for k, v in self.reader.manifest.items() if k not in _ADDED}
        self.initial = dict(self.reader.initial)
        self.seconds = float(seconds or 0.0)
        self._steps = self.reader.steps()

    def step(self, batch):
        out = next(self._steps, None)
        if out is None:
            raise ParityError(f"{self.path}: the {self.dtype} run of {self.manifest.get('port')} ends after "
                              f"{self.steps} steps")
        self.steps += 1
        return out

    def close(self) -> None:
        self.reader.close()


def _lockstep():
    from parity.comparison.envelope import Drift
    from parity.run.lockstep import Lockstep

    class Replayed(Lockstep):
        """``parity diff``'s own step loop (pairing, drifts, conditioning, windows, health, comparison), its runs
        read from the two recordings instead of run: the comparison is diff's by construction."""

        def __init__(self, *args, runs: dict, extra, **kwargs):
            super().__init__(*args, **kwargs)
            self.replays, self.extra = runs, extra

        def open_ports(self) -> None:
            for dtype in self.dtypes:
                self.result.errors.setdefault(dtype, {})
                for port in self.ports:
                    run = self.replays[(dtype, port)]
                    self._record(run, port, dtype)
                    self.result.seconds[f"{port}/{dtype}"] = round(run.seconds, 4)

        def open_extra_runs(self) -> None:
            if self.extra is None:
                return
            name, run = self.extra
            if name == "shadow" and self.dtypes == ["float64"]:
                self.shadow = (self.ports[0], run, Drift())
                self.drifts = {self.shadow[0]: self.shadow[2]}
            elif name == "conditioning" and self.dtypes == ["float64", "float32"]:
                self.cond_run = (self.ports[0], run, Drift())

    return Replayed


def compare_recordings(ref: str, port: str, *, partial: bool = False):
    """Compare a reference's recording with its port's; return ``(result, ref info, port info, facts)``: the
    CaseResult ``parity diff`` builds (with its ``mapping`` and ``notes``), the facts read where the reference
    was recorded (a dict with the reason under ``"error"`` when they could not be read)."""
    from parity.program.mapping import Mapping_
    from parity.program.record import EPILOGUE, case_from_json

    ri, pi = _infos(ref, port)
    case = case_from_json(pi["case"], port)
    rp, pp = case.ports
    dtypes = list(case.dtypes)
    if list(ri.get("dtypes", [])) != dtypes or list(pi.get("dtypes", [])) != dtypes:
        raise ParityError(f"{ref} holds {ri.get('dtypes')}, {port} holds {pi.get('dtypes')}: not the same runs")
    ends_r, ends_p = read_end(ref, EPILOGUE), read_end(port, EPILOGUE)
    cut = [path for path, end in ((ref, ends_r), (port, ends_p)) if not end]
    if cut and not partial:
        raise ParityError(f"recording interrupted: {', '.join(cut)} (its run did not finish); --partial compares the "
                          "steps both hold")
    streams = {(d, label): (path, None if d == info.get("main") else d, end)
               for d in dtypes for label, path, info, end in ((rp, ref, ri, ends_r), (pp, port, pi, ends_p))}
    steps, notes = case.steps, []
    if cut:
        held = {key: _count(path, run) for key, (path, run, _) in streams.items()}
        steps = min(held.values())
        notes.append(f"--partial: compared the {steps} steps every run holds (of {case.steps}; "
                     f"{', '.join(cut)} interrupted)")
        case = case.replace(steps=steps)
    runs, extra = {}, None
    try:
        for key, (path, run, end) in streams.items():
            runs[key] = _Replay(path, run, key[0], (end.get("seconds") or {}).get(key[0]))
        for name in ("conditioning", "shadow"):
            if name in (ends_r.get("streams") or []):
                extra = (name, _Replay(ref, name, "float64" if name == "conditioning" else "float32"))
        rec = _lockstep()(case, [rp, pp], dtypes, modules={}, sources={}, pairs="reference", keep="window",
                          window=0 if (ri.get("summary") or pi.get("summary")) else 2, trace_dir=None,
                          summary=False, observers=(), workers=False, conditioning=True, runs=runs, extra=extra)
        try:
            rec.open_ports()
            rec.pair()
            rec.open_extra_runs()
            rec.run(iter([{}] * steps))
        except BaseException:
            rec.close(complete=False)
            raise
        rec.close()
        result = rec.finish()
    finally:
        for r in list(runs.values()) + ([extra[1]] if extra else []):
            r.close()
    errors = [e for per in result.errors.values() for e in per.values()]
    if errors:
        raise errors[0]
    notes = list(dict.fromkeys(notes + list(ends_r.get("notes") or ri.get("notes", [])) + list(ends_p.get("notes") or [])))
    result.mapping = Mapping_.from_json(json.loads(pi["mapping"]), where=f"{port}: mapping")
    result.notes = notes
    result.program_run = None
    result.pool = None
    return result, ri, pi, ends_r.get("facts")


def _count(path: str, run) -> int:
    r = RunReader(path, run)
    try:
        return sum(1 for _ in r.steps())
    finally:
        r.close()
