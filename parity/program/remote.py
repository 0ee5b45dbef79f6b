"""``parity diff`` in worker processes: each program captured and stepped in a process of its own (numpy only).

The harness process holds the batches, the mapping's decisions and the streaming comparison; the
reference and the port each live in a worker (:mod:`parity.run.workers`, a fresh interpreter), so no
process imports both frameworks or holds both models. Two parts:

* **the probes** (:func:`parity.program.prepare.prepare`, the facts): :meth:`Pool.capture` captures a
  program in its worker and returns a :class:`Remote`, a proxy of the captured program. Every attribute
  read and every call crosses the wire (arrays out of band); what is not plain data (a data generator,
  a recording object) stays in the worker and comes back as another proxy. Nothing here names a
  method of the capture adapters: what they add passes through.
* **the steps**: :func:`register` tells :class:`parity.run.remote_runs.RemoteRun` which worker runs each side
  of the case; the worker builds the port (:class:`parity.program.port.ProgramPorts`) from the mapping
  and the initial weights it is sent, and steps it as the catalogue's ports are stepped.

Errors keep their contract: the user's code raising in a worker is a :class:`ProgramError` at the user's
file and line there (exit 3); parity's own failure there is a :class:`WorkerBug` (not a ParityError:
exit 4, with the worker's traceback); a worker that vanishes is a :class:`~parity.errors.PortError`
naming the program and what it was doing (exit 3). ``PARITY_WORKERS=0`` runs both in this process.
"""

from __future__ import annotations

import itertools
import contextlib
import os

from parity.errors import PortError

__all__ = ["enabled", "tune_malloc", "no_huge_pages", "Pool", "Remote", "WorkerBug", "WorkerDied", "register", "unregister", "program_spec", "BOOT"]

_TOKENS = itertools.count(1)
#: what a program's worker runs first: the worker's half of this module registers its messages
BOOT = "import parity.program.remote_worker"


def enabled() -> bool:
    """Whether ``parity diff`` runs its programs in workers (``PARITY_WORKERS``: on unless "0")."""
    from parity.run.workers import enabled as on

    return on()


class WorkerBug(RuntimeError):
    """parity's own code failed inside a program's worker (exit 4: a bug), with the worker's traceback."""


class WorkerDied(Exception):
    """A program's worker process vanished (killed, out of memory, ``os._exit``, a crash in C++)."""


class _Handle:
    """An object left in the worker (not plain data), named by its key there."""

    def __init__(self, key: int, callable_: bool, iterable: bool):
        self.key, self.callable, self.iterable = key, callable_, iterable


def tune_malloc() -> None:
    """Keep the memory a step frees for the next step, in this process (glibc; elsewhere nothing).

    A step's arrays (a float64 step of the seed 001 convnet at batch 128: ~240 MB, copied at the boundary, sent and
    received) are freed and made again every step. glibc by default hands memory at the heap's top back to the
    system (``M_TRIM_THRESHOLD``, adjusted as it goes) and maps blocks of a size it has not seen freed afresh
    (``M_MMAP_THRESHOLD``, adjusted likewise): each step then faults its memory in again, in the kernel. Fixed
    (no trimming; blocks of 32 MB or more mapped) that system time goes (two TF1 float64 captures stepped in
    turn, 4 steps: 185k page faults and 2.9 s of system time against 47k and 1.5 s; the same peak). A user's own
    ``MALLOC_*`` / ``GLIBC_TUNABLES`` settings stand.

    And numpy asks for no transparent huge pages (:func:`no_huge_pages`)."""
    no_huge_pages()
    if any(k.startswith("MALLOC_") or k == "GLIBC_TUNABLES" for k in os.environ):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 2**31 - 1)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (glibc's largest)
    except (OSError, AttributeError):
        pass


def no_huge_pages() -> bool:
    """Stop numpy asking the kernel for transparent huge pages for its arrays of 4 MB or more (``madvise``); a
    user's own ``NUMPY_MADVISE_HUGEPAGE`` stands. Returns whether it was turned off here.

    Where the kernel grants them on request (``/sys/kernel/mm/transparent_hugepage/enabled``: ``madvise``, with
    ``defrag`` ``madvise``: it compacts memory to find them, in the faulting process) the harness's and the
    workers' arrays made and freed every step cost system time: ``parity diff`` of the seed 001 convnet at batch
    128, 10 steps, both dtypes, the harness's system time 2.7 -> 1.6 s, every process's CPU 42.3 -> 39.2 s
    (docs/performance.md). The numbers are the same."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return False
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if not callable(setter):
        return False
    setter(False)
    return True


# -- harness side ----------------------------------------------------------------------------------------
class Pool:
    """The workers of one ``parity diff``: one per program (``reference``, ``port``) and run (:meth:`worker`),
    each started on first use and stopped by :meth:`close`."""

    def __init__(self, reference: str, port: str):
        self.paths = {"reference": reference, "port": port}
        self.workers: dict = {}
        self.zygotes: dict = {}
        tune_malloc()  # this process receives every run's steps
        self.token = next(_TOKENS)

    def worker(self, side: str, run: str = "float64"):
        """The worker of ``side`` for ``run``: "float64" (also the probes and the facts) or "float32" (also the
        envelope's perturbed float64 run): the two step in parallel."""
        from parity.program.zygote import forked_worker
        from parity.run.workers import _WORKERS, _Worker

        w = self.workers.get((side, run))
        if w is None or not w.alive:
            what = f"{side} program's ({self.paths[side]}{'' if run == 'float64' else ', ' + run + ' run'})"
            w = self.workers[(side, run)] = forked_worker(self.zygote(side), what, BOOT) or _Worker(what, boot=BOOT)
            _WORKERS[f"program:{self.token}:{side}:{run}"] = w  # stopped at exit with the others
        return w

    def zygote(self, side: str):
        """The process that forks ``side``'s workers, the program's framework imported once for both
        (:mod:`parity.program.zygote`); None where forking is not used."""
        from parity.program.zygote import Zygote, usable

        z = self.zygotes.get(side)
        if (z is None or not z.alive) and usable():
            z = self.zygotes[side] = Zygote(self.paths[side])
        return z

    def run_worker(self, side: str):
        """``(dtype, perturb) -> worker`` for :class:`parity.run.remote_runs.RemoteRun`: the conditioning run (a
        perturbed float64 run) in the float32 run's worker, beside it: a process of its own imported the framework
        once more (the seed 001 convnet's TF1: ~6 s of CPU and a 1.3 GB process) for a model of a few MB. Not in
        the float64 run's worker: the seed 001 convnet's reference peaked at 1515 MB there, at 1487 MB beside the
        float32 run (docs/performance.md)."""
        return lambda dtype, perturb: self.worker(side, "float32" if perturb is not None else dtype)

    def capture(self, program, dtype: str, side: str | None = None, phase: str = "in parity's probe forward pass"):
        """``program`` captured in ``dtype`` in its side's worker: a :class:`Remote` proxy."""
        side = side or program.side  # set by prepare: the same file may be both sides
        w = self.worker(side)
        reply = _ask(w, ("pcapture", program.path, int(getattr(program, "seed", 0)), dtype, phase),
                     f"{program.path}", f"while built for a {dtype} run")
        return _proxy(w, reply, program.path, phase)

    def notes(self, side: str) -> list:
        out: list = []
        for (s, _), w in list(self.workers.items()):
            if s == side and w.alive:
                out += [n for n in _ask(w, ("pnotes", self.token), self.paths[side], "reading its notes") if n not in out]
        return out

    def close(self) -> None:
        from parity.run.workers import _WORKERS

        for (side, run), w in self.workers.items():
            _WORKERS.pop(f"program:{self.token}:{side}:{run}", None)
            w.stop()
        self.workers = {}
        for z in self.zygotes.values():
            z.stop()
        self.zygotes = {}


def program_spec(run, side: str, pool: Pool) -> dict:
    """What a worker needs to build one side's port: its file, seed, the mapping and the initial weights."""
    program = run.reference if side == "reference" else run.port
    return {"token": pool.token, "side": side, "path": program.path, "seed": int(getattr(program, "seed", 0)),
            "mapping": run.mapping, "initial": run.initial, "notes": list(run.notes),
            "constrained": bool(run.constrained)}


def register(case_name: str, ports: dict, run, pool: Pool) -> None:
    """``ports``: port label -> side; each side's port then runs in its worker (RemoteRun looks it up)."""
    from parity.run.workers import PROGRAMS

    for label, side in ports.items():
        PROGRAMS[(case_name, label)] = (pool.run_worker(side), ("program", program_spec(run, side, pool)))


def unregister(case_name: str, ports) -> None:
    from parity.run.workers import PROGRAMS

    for label in ports:
        PROGRAMS.pop((case_name, label), None)


def _ask(w, msg, path: str, during: str):
    """Send ``msg`` to ``w``; its value, or the error it raised there (rebuilt here)."""
    from parity.run.workers import _Died

    try:
        ok, payload = w.call(*msg)
    except _Died as exc:
        raise PortError(os.path.basename(path), during, WorkerDied(str(exc))) from None
    if ok:
        return payload
    raise _rebuilt(payload)


def _rebuilt(payload) -> BaseException:
    kind, value = payload
    if kind == "bug":
        return WorkerBug(value)
    fn, args = value
    return fn(*args)


def _proxy(w, value, path: str, phase: str):
    """A reply with every :class:`_Handle` in it made a :class:`Remote`."""
    if isinstance(value, _Handle):
        cls = _CLASSES[(value.callable, value.iterable)]
        return cls(w, value.key, path, phase)
    if isinstance(value, dict):
        return {k: _proxy(w, v, path, phase) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_proxy(w, v, path, phase) for v in value)
    return value


class Remote:
    """A captured program (or an object of its) living in a worker: attributes and calls cross the wire."""

    def __init__(self, w, key: int, path: str, phase: str):
        object.__setattr__(self, "_remote", (w, key, path))
        object.__setattr__(self, "phase", phase)

    def _call(self, name: str, *args, **kwargs):
        w, key, path = self._remote
        reply = _ask(w, ("pcall", key, name, args, kwargs, self.phase), path, f"{name}() {self.phase}")
        return _proxy(w, reply, path, self.phase)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        w, key, path = self._remote
        kind, value = _ask(w, ("pget", key, name), path, f"reading {name} {self.phase}")
        if kind == "missing":
            raise AttributeError(name)
        if kind == "method":
            return lambda *a, **k: self._call(name, *a, **k)
        return _proxy(w, value, path, self.phase)

    def __setattr__(self, name: str, value) -> None:
        if name == "phase":
            object.__setattr__(self, name, value)
            return
        w, key, path = self._remote
        _ask(w, ("pset", key, name, value), path, f"setting {name} {self.phase}")

    def close(self) -> None:
        w, key, path = self._remote
        if w.alive:
            _ask(w, ("pclose", key), path, "closing it")


class _RemoteCallable(Remote):
    def __call__(self, *args, **kwargs):
        return self._call("__call__", *args, **kwargs)


class _RemoteIterable(Remote):
    def __iter__(self):
        return self._call("__iter__")

    def __next__(self):
        w, key, path = self._remote
        kind, value = _ask(w, ("pnext", key, self.phase), path, f"its data's next batch {self.phase}")
        if kind == "stop":
            raise StopIteration
        return _proxy(w, value, path, self.phase)


class _RemoteBoth(_RemoteCallable, _RemoteIterable):
    pass


_CLASSES = {(False, False): Remote, (True, False): _RemoteCallable, (False, True): _RemoteIterable,
            (True, True): _RemoteBoth}
