"""The worker's half of :mod:`parity.program.remote`: a program's captures, its objects and its ports, by key.

Runs inside a worker process (:func:`parity.run.workers._serve` hands it the ``p*`` messages and the
``open`` of a program's port). What goes back is plain data (numbers, strings, arrays, parity's own
records); anything else stays here under a key (:class:`~parity.program.remote._Handle`). numpy only.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys
import traceback

import numpy as np

from parity.errors import ParityError, PortError, UserFileError

__all__ = ["serve", "program_ports", "OPS"]

OPS = ("pcapture", "pget", "pcall", "pset", "pnext", "pclose", "pnotes")

_KEYS = itertools.count(1)
_OBJECTS: dict = {}  # key -> (object, owner key, program)
_PROGRAMS: dict = {}  # path -> Program (loaded once per worker)
_RUNS: dict = {}  # (token, side) -> ProgramRun of this side (its notes grow while it steps)
_QUIET = []


def _user_output_to_stderr() -> None:
    """The user's prints (and a library's writes to fd 1) go to stderr: stdout is the report's alone."""
    if not _QUIET:
        _QUIET.append(True)
        sys.stdout.flush()
        os.dup2(2, 1)
        sys.stdout = sys.stderr


def _program(path: str, seed: int):
    from parity.program.load import load_program

    _user_output_to_stderr()
    program = _PROGRAMS.get(path)
    if program is None:
        program = _PROGRAMS[path] = load_program(path)
    program.seed = seed
    return program


def serve(msg) -> tuple:
    """One ``p*`` message -> ``(ok, payload)``; every failure is packed (:func:`_packed`)."""
    op = msg[0]
    program, phase = None, "in parity's probe forward pass"
    try:
        if op == "pcapture":
            _, path, seed, dtype, phase = msg
            from parity.program.load import capture

            program = _program(path, seed)
            _release()  # a port run closed before (the facts are read after the steps): its capture freed first
            _CLOSED.append(True)  # a build that fails leaves its objects: collected before the next one
            obj = capture(program, dtype)
            _CLOSED.clear()
            return True, _plain(obj, None, program, force=True)
        if op == "pnotes":
            token = msg[1]
            return True, [n for (t, _), run in _RUNS.items() if t == token for n in run.notes[run.known:]]
        key = msg[1]
        obj, owner, program = _OBJECTS[key]
        if op == "pget":
            try:
                value = getattr(obj, msg[2])
            except AttributeError:
                return True, ("missing", None)
            if callable(value) and getattr(value, "__self__", None) is obj:  # a method: called by name
                return True, ("method", None)
            return True, ("value", _plain(value, owner or key, program))
        if op == "pcall":
            _, _, name, args, kwargs, phase = msg
            return True, _plain(getattr(obj, name)(*args, **kwargs), owner or key, program)
        if op == "pnext":
            phase = msg[2]
            try:
                value = next(obj)
            except StopIteration:
                return True, ("stop", None)
            return True, ("value", _plain(value, owner or key, program))
        if op == "pset":
            setattr(obj, msg[2], msg[3])
            return True, None
        if op == "pclose":
            for k in [k for k, (_, o, _) in _OBJECTS.items() if o == key]:
                del _OBJECTS[k]
            _OBJECTS.pop(key, None)
            close = getattr(obj, "close", None)
            del obj
            _CLOSED.append(True)
            if callable(close):
                close()
            del close
            _release()
            return True, None
        raise ParityError(f"unknown program message {op!r}")
    except BaseException as exc:  # noqa: BLE001 -- every failure goes back to the harness
        return False, _packed(exc, program, phase)


def _packed(exc: BaseException, program, phase: str):
    """The error as the harness rebuilds it: parity's own errors whole (an adapter's PortError at the user's
    line where their file is on the stack), the user's code raising as a ProgramError at their line, any
    other exception as parity's bug (``("bug", traceback)``: exit 4)."""
    from parity.program.load import at_users_line, program_error
    from parity.run.wire import pack

    programs = [program] if program is not None else list(_PROGRAMS.values())
    if isinstance(exc, PortError) and not isinstance(exc, UserFileError):
        exc = at_users_line(exc, programs, phase)
    if isinstance(exc, ParityError):
        return "error", pack(exc)
    if isinstance(exc, (Exception, SystemExit)):
        err = program_error(exc, programs, phase)
        if err is not None:
            return "error", pack(err)
    text = "".join(traceback.format_exception(exc)).strip()
    return "bug", f"parity failed in a program's worker process (pid {os.getpid()}):\n{text}"


def _plain(x, owner, program, force: bool = False):
    """``x`` as plain data for the harness; what is not (a function, a generator, a framework's object)
    stays here and goes as a handle. ``force``: ``x`` itself stays here (a captured program)."""
    from parity.program.remote import _Handle

    if not force:
        if x is None or isinstance(x, (bool, str, bytes, np.ndarray, np.generic, np.dtype)):
            return str(x) if isinstance(x, str) and type(x) is not str else x
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, dict):
            return {_plain(k, owner, program): _plain(v, owner, program) for k, v in x.items()}
        if isinstance(x, (list, tuple, set, frozenset)) and not hasattr(x, "_fields"):
            kind = type(x) if type(x) in (list, tuple, set, frozenset) else list
            return kind(_plain(v, owner, program) for v in x)
        if dataclasses.is_dataclass(x) and not isinstance(x, type) and type(x).__module__.startswith("parity."):
            return x  # parity's own records (ParamSpec, DropoutSite)
        if type(x).__module__.startswith("parity.") and isinstance(x, tuple):
            return x
        if all(hasattr(x, a) for a in ("indices", "values", "dense_shape")):  # a sparse batch value
            from parity.program.batches import as_array

            return as_array(x)
        array = _array(x)
        if array is not None:
            return array
    key = next(_KEYS)
    _OBJECTS[key] = (x, owner, program)
    iterable = hasattr(type(x), "__next__") or hasattr(type(x), "__iter__")
    return _Handle(key, callable(x), iterable)


def _array(x):
    """A framework's tensor as a numpy array (duck-typed: parity imports no framework), else None."""
    if isinstance(x, type):
        return None
    detach = getattr(x, "detach", None)
    if callable(detach) and hasattr(x, "cpu"):
        return detach().cpu().numpy()
    if hasattr(x, "__array__") and hasattr(x, "dtype") and hasattr(x, "shape"):
        return np.array(x)
    return None


_CLOSED: list = []  # a capture or a port was closed since the last release: something for the collector


def _release() -> None:
    """Free a closed capture now (a model with hooks is a reference cycle: only the collector frees it) and
    hand the freed memory back to the system, before this process builds the next one. Only when something
    was closed since the last time: a full collection walks every object of a TF1 worker (the graph's)."""
    import gc

    if _CLOSED:
        _CLOSED.clear()
        gc.collect()
        _trim()


def _trim() -> None:
    """Hand the memory malloc holds free back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused by this process all the same
        pass


class _Trimmed:
    """A program's port (:class:`parity.program.port._Port`) whose step first collects the young objects the
    previous step left in reference cycles (a generation-1 collection: only objects made since the last
    collections are looked at). Everything but ``step`` is the port's own.

    A full collection and ``malloc_trim`` before every step (the code before) cost more than the steps they
    freed: a full collection walks every object of the process (a TF1 graph's: 0.22 s of CPU each in the seed
    001 convnet's worker), and memory handed back to the system is faulted in again at the next step (system
    time: 15 s of the reference's float64 worker's 33 s, 10 steps at batch 128). The torch capture's step, which
    left its recorded tensors in a reference cycle (171 MB a float64 step; the worker grew ~170 MB a step),
    now frees them itself (``torch_impl/capture/forward.py``); a TF1 step leaves no cycle; glibc reuses the
    memory a step frees for the next one. A closed capture is still collected and trimmed (:func:`_release`)."""

    def __init__(self, port):
        self._port = port

    def step(self, batch):
        import gc

        gc.collect(1)
        return self._port.step(batch)

    def close(self) -> None:
        _CLOSED.append(True)  # freed at the next capture or port built in this worker (_release)
        close = getattr(self._port, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name):
        return getattr(self._port, name)


def program_ports(payload: dict):
    """One side's port module (:class:`~parity.program.port.ProgramPorts`) from what the harness decided."""
    from parity.program.port import ProgramPorts, ProgramRun

    token, side = payload["token"], payload["side"]
    _release()
    run = _RUNS.get((token, side))
    if run is None:
        program = _program(payload["path"], payload["seed"])
        ref, prt = (program, None) if side == "reference" else (None, program)
        run = _RUNS[(token, side)] = ProgramRun(reference=ref, port=prt, mapping=payload["mapping"],
                                               initial=payload["initial"], batches=[], notes=list(payload["notes"]),
                                               constrained=payload["constrained"])
        run.known = len(run.notes)
    ports = ProgramPorts(run, side)
    build = ports.build
    ports.build = lambda case, dtype, variant=None: _Trimmed(build(case, dtype, variant))
    return ports


#: A folder: each program worker of ``parity diff`` profiles itself (cProfile, CPU time) and writes
#: ``worker-<pid>-<its name>.prof`` there when it stops (where a diff spends its time; docs/performance.md)
PROFILE_ENV = "PARITY_PROFILE_WORKERS"


def _profiled() -> None:
    folder = os.environ.get(PROFILE_ENV)
    if folder:
        import atexit
        import cProfile
        import time

        prof = cProfile.Profile(time.process_time)
        name = "".join(c if c.isalnum() else "_" for c in os.environ.get("_PARITY_WORKER_NAME", ""))[:60]
        atexit.register(lambda: (prof.disable(), prof.dump_stats(os.path.join(folder, f"worker-{os.getpid()}-{name}.prof"))))
        prof.enable()


def _tune_malloc() -> None:
    from parity.program.remote import tune_malloc

    tune_malloc()  # a step's memory kept for the next one (no page faults each step)


def _registered() -> None:
    """This worker serves the ``p*`` messages and builds programs' ports (:mod:`parity.run.workers`)."""
    from parity.run import workers

    workers.HANDLERS.update({op: serve for op in OPS})
    workers.MODULES["program"] = lambda payload: (program_ports(payload), payload["path"])


_registered()
_profiled()
_tune_malloc()
