"""The port boundary: call a port, check and copy what it returns, run it one step at a time.

What crosses from a port into parity is checked and copied here, once:

* a step returns ``{stage: {name: array}}``; anything else (None, a float for a stage, an
  object array) is a one-line protocol :class:`~parity.errors.ParityError` naming the
  stage and the type;
* every array is copied (a port returning views of tensors its optimizer later updates
  in place cannot corrupt its own trace); the batch and the parameters handed to a port
  are copies too (``torch.from_numpy`` shares memory);
* a tensor with ``.detach()`` (a torch tensor that requires grad) is detached and moved to
  the CPU, one with ``.numpy()`` (TF eager) converted -- duck-typed: parity imports no
  framework;
* an exception in a port, ``SystemExit`` included (a port calling ``sys.exit``), is the
  port's crash: :class:`~parity.errors.PortError`.

:class:`PortRun` runs one port of one case in one dtype step by step, in this process or
(ports a case marks ``isolate``) by reading the trace a fresh interpreter recorded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import tempfile
import time
import traceback
from types import ModuleType
from typing import Mapping

import numpy as np

from parity._version import __version__
from parity.cases.case import Case, PortSpec
from parity.portkit.contract import PORT_FUNCTIONS
from parity.run.frameworks import PORT_PACKAGES
from parity.errors import ParityError, PortError, UserFileError
from parity.cases.params import draw_parameters, perturbed
from parity.trace.memory import STAGES
from parity.run.device import device_summaries, summarized_in_place

__all__ = ["beside", "call", "parity_fault", "raise_parity_fault", "to_array", "to_stages", "PortRun", "record_isolated", "load_port_module", "load_user_port", "PORT_FUNCTIONS"]


def _check_port_module(mod: ModuleType, where: str) -> ModuleType:
    missing = [f for f in PORT_FUNCTIONS if not callable(getattr(mod, f, None))]
    if missing:
        raise ParityError(f"port module {where} does not define {', '.join(missing)} (see docs/ports.md)")
    return mod


def load_port_module(framework: str, module: str) -> ModuleType:
    """Import the built-in port module ``module`` of ``framework`` (lazily imports the framework)."""
    if framework not in PORT_PACKAGES:
        raise ParityError(f"unknown framework {framework!r}; expected one of {', '.join(PORT_PACKAGES)}")
    name = f"{PORT_PACKAGES[framework]}.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
            raise ParityError(f"there is no {framework} port for module {module!r} ({name})") from None
        raise ParityError(f"cannot import {name}: {exc}") from None
    return _check_port_module(mod, name)


def load_user_port(path: str) -> ModuleType:
    """Import a user's port file: a missing file is a :class:`ParityError` (exit 2); the file raising at import
    is a :class:`~parity.errors.UserFileError` (exit 3, the file and line)."""
    if os.path.isdir(path):
        raise ParityError(f"port file {path} is a directory, not a Python file")
    if not os.path.isfile(path):
        raise ParityError(f"port file {path} does not exist")
    name = "parity_user_port_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParityError(f"port file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    beside(path)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # a user's file can fail in any way: exit 3, at the user's own line
        raise UserFileError(path, "at import", exc, kind="port file") from None
    return _check_port_module(mod, path)


def beside(path: str) -> None:
    """Put a user's file's own directory first on ``sys.path``, as ``python FILE`` does, so that it imports
    the modules beside it (``from model import Net``); parity's child interpreters never look in the
    working directory (:mod:`parity.run.interpreter`)."""
    import sys

    here = os.path.dirname(os.path.abspath(path))
    if here not in sys.path:
        sys.path.insert(0, here)


#: the installed frameworks a user's code calls (an error raised inside one of them, under parity's capture code,
#: may be the user's input passed through: blamed on the user, exit 3)
_FRAMEWORKS = ("tensorflow", "keras", "tf_keras", "torch", "jax", "flax", "optax")
#: parity's capture adapters (the code that records a user's program while it runs) and the programs' side of
#: parity (parity.program: the captured programs behind the port protocol, never called by a user's code)
_CAPTURE = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), *d) + os.sep
                 for d in (("tf_impl", "v1", "capture"), ("tf_impl", "v2", "capture"), ("torch_impl", "capture"),
                           ("parity", "program")))


def _library_root(filename: str) -> str | None:
    """The top-level package of an installed library's (or Python's own) frame, "" for the standard
    library; None for any other file (a user's file, parity's own)."""
    import sysconfig

    path = os.path.abspath(filename)
    parts = path.split(os.sep)
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            return parts[i + 1] if i + 1 < len(parts) else ""
    if filename.startswith("<"):
        return ""
    stdlib = tuple(os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib"))
    return "" if path.startswith(stdlib) else None


#: capture functions that hand the user's own call on to the framework (the torch function mode's
#: ``__torch_function__``, Keras' wrapped ``apply_gradients``): transparent, as a library frame is
_PASS_THROUGH = ("__torch_function__", "apply_gradients")


def _passes_through(frame) -> bool:
    return frame.name in _PASS_THROUGH and os.path.abspath(frame.filename).startswith(_CAPTURE)


def parity_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is parity's own fault although it came out of a call into the user's code (a crash in a
    capture hook while the user's ``train_step`` runs): the innermost frame that is not an installed library's
    or Python's own lies in parity's capture code (``tf_impl/*/capture``, ``torch_impl/capture``,
    ``parity/program``) and no framework frame (TensorFlow, Keras, torch) lies below it. The capture
    wrappers that pass the user's own call on to the framework (:data:`_PASS_THROUGH`: a wrapped ``apply_gradients``, the recording mode of
    torch functions) count as the framework's: an error raised there on the user's input is the user's
    (exit 3), as is anything raised in the user's own file (its frame is the innermost non-library one).
    docs/own-model.md, "Errors and warnings"."""
    if isinstance(exc, (ParityError, SystemExit, KeyboardInterrupt)):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    roots = [_library_root(f.filename) for f in frames]
    inner = [i for i, r in enumerate(roots) if r is None and not _passes_through(frames[i])]
    if not inner:
        return False
    i = inner[-1]
    if not os.path.abspath(frames[i].filename).startswith(_CAPTURE):
        return False
    return not any(r in _FRAMEWORKS for r in roots[i + 1:])


def call(port: str, phase: str, case: Case, fn, *args):
    """Call a port's function; its own exceptions (and ``sys.exit``) become a :class:`PortError`, except a fault
    of parity's own capture code (:func:`parity_fault`), which stays parity's (exit 4)."""
    try:
        return fn(*args)
    except ParityError as exc:
        raise_parity_fault(exc)
        raise
    except (Exception, SystemExit) as exc:  # the framework's own error, or the port exiting
        if parity_fault(exc):
            raise
        raise PortError(port, phase, exc, case=case.name) from exc


def raise_parity_fault(exc: BaseException) -> None:
    """Raise the exception that caused ``exc`` (an adapter's PortError around the user's call) when it is
    parity's own fault (:func:`parity_fault`): exit 4, not the user's exit 3."""
    cause = exc.__cause__ if isinstance(exc, PortError) else None
    if cause is not None and parity_fault(cause):
        raise cause


def to_array(value, port: str, where: str, copy: bool = True) -> np.ndarray:
    """Copy one value a port returned into a C-contiguous numpy array of numbers: one copy per tensor.

    A torch tensor is detached; a non-contiguous one (a transposed kernel in the canonical
    layout) is made contiguous by torch, on its device (a blocked copy, several times
    faster than numpy's strided one), and moved to the host: when either made a new tensor,
    that is the copy. An object with ``__array__`` (a TF eager tensor: a view of its
    buffer) is copied by numpy once, not through ``.numpy()`` (itself a copy) and again.
    """
    v, fresh = value, not copy and isinstance(value, np.ndarray)  # copy=False: the caller copies it (pickles it)
    if not isinstance(v, (np.ndarray, np.generic)):
        detach = getattr(v, "detach", None)
        if callable(detach):  # torch: drop the autograd graph, leave the device
            v = detach()
            is_contiguous = getattr(v, "is_contiguous", None)
            if callable(is_contiguous) and not is_contiguous():
                v, fresh = v.contiguous(), True
            cpu = getattr(v, "cpu", None)
            if callable(cpu):
                moved = cpu()
                v, fresh = moved, fresh or moved is not v
        if hasattr(type(v), "__array__") and not callable(detach):
            try:
                v = np.asarray(v)  # TF eager tensors: their buffer, copied once below
            except Exception:  # noqa: BLE001 - let the copy below name the value
                pass
        else:
            to_numpy = getattr(v, "numpy", None)
            if callable(to_numpy):  # torch, TF variables, objects with .numpy() only
                v = to_numpy()
    try:
        # fresh: a tensor made here, referenced by nothing else: its buffer is the copy.
        arr = np.asarray(v, order="C") if fresh else np.array(v, copy=True, order="C")
    except Exception as exc:  # a value numpy cannot take: one line, not a traceback
        raise ParityError(f"port {port}: {where} is a {type(value).__name__} that is not an array ({type(exc).__name__})") from None
    if arr.dtype.kind not in "biuf":
        raise ParityError(f"port {port}: {where} is a {type(value).__name__} of dtype {arr.dtype}, not an array of numbers")
    return arr


def to_stages(out, port: str, phase: str, case: Case, *, summary: bool = False, copy: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Check that ``out`` is ``{stage: {name: array}}`` and copy it into numpy (else a one-line :class:`ParityError`);
    ``summary``: big torch tensors are summarized where they live, not copied (:mod:`parity.run.device`)."""
    if not isinstance(out, Mapping):
        raise ParityError(
            f"port {port}: {phase} returned {type(out).__name__}, expected a dict {{stage: {{name: array}}}}"
        )
    result = {}
    pending: dict = {}
    for stage, arrays in out.items():
        if stage not in STAGES:
            raise ParityError(f"port {port} returned unknown stage {stage!r}; stages are {', '.join(STAGES)}")
        if not isinstance(arrays, Mapping):
            raise ParityError(
                f"port {port}: {phase} returned stage {stage!r} as a {type(arrays).__name__}, expected a dict of arrays",
            )
        pending.update({(stage, str(k)): v for k, v in arrays.items() if summary and summarized_in_place(v)})
        result[stage] = {str(k): None if (stage, str(k)) in pending else to_array(v, port, f"{phase}, {stage} {k!r}", copy)
                         for k, v in arrays.items()}  # (None: a summary's place in the port's order, filled below)
    for (stage, k), s in (device_summaries(pending) if pending else {}).items():
        result[stage][k] = s
    return result


def _copy(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


class PortRun:
    """One port of a case in one dtype, run one step at a time.

    Usage: :meth:`open` (build, load, read the initial parameters), :meth:`step` per batch,
    :meth:`close`. ``manifest`` and ``initial`` are set by :meth:`open`; ``seconds`` adds
    up the time spent inside the port.

    Args:
        case, port, dtype: what to run.
        module: a port module to use instead of the built-in one (a user's port).
        source: where ``module`` came from, for the manifest.
        isolate: run ports the case marks ``isolate`` in a fresh interpreter.
        summary: a summary recording: big torch tensors summarized where they live (:func:`to_stages`).
        perturb: a draw number: the conditioning run (:mod:`parity.comparison.envelope`), whose initial
            parameters and batches are perturbed by float32's unit roundoff
            (:func:`parity.cases.params.perturbed`), the same draws for the same number.
    """

    def __init__(self, case: Case, port: str, dtype: str, *, module: ModuleType | None = None,
                 source: str | None = None, isolate: bool = True, recorded: tuple[str, str] | None = None,
                 perturb: int | None = None, summary: bool = False, copy: bool = True):
        self.case, self.port, self.dtype = case, port, dtype
        self.summary, self.perturb = summary, perturb
        self.copy = copy  # False: what a step returns is pickled at once (a worker's), not copied first
        self._rng = None if perturb is None else np.random.default_rng([case.seed, 0x0C0D, perturb])
        self.module, self.source = module, source
        self.isolated = module is None and isolate and port in case.option("isolate", ())
        self.recorded = recorded  # (trace path, error path) from record_isolated()
        self.manifest: dict = {}
        self.initial: dict[str, np.ndarray] = {}
        self.seconds = 0.0
        self.steps = 0
        self._instance = None
        self._reader = None
        self._steps_iter = None
        self._tmp = None

    def open(self) -> None:
        started = time.perf_counter()
        try:
            if self.isolated:
                self._open_isolated()
            else:
                self._open()
        finally:
            self.seconds += time.perf_counter() - started

    def _open(self) -> None:
        case, port, dtype = self.case, self.port, self.dtype
        spec = PortSpec.parse(port)
        mod = self.module or load_port_module(spec.framework, case.module)
        params = draw_parameters(case, dtype)
        if self._rng is not None:
            params = perturbed(params, self._rng)
        info = call(port, "framework_info", case, mod.framework_info)
        if not isinstance(info, Mapping):
            raise ParityError(f"port {port}: framework_info() returned {type(info).__name__}, expected a dict", case=case.name)
        self._instance = call(port, "build", case, mod.build, case, dtype, spec.variant)
        self.manifest = {
            "case": case.name,
            "port": port,
            "framework": spec.framework,
            "framework_version": info.get("version", "?"),
            "device": info.get("device", "cpu"),
            "dtype": dtype,
            "seed": case.seed,
            "source": self.source or getattr(mod, "__name__", "?"),
            "parity_version": __version__,
        }
        if self.perturb is not None:
            self.manifest["perturbed"] = self.perturb
        settings = getattr(self._instance, "settings", None)
        if callable(settings):
            self.manifest["settings"] = call(port, "settings", case, settings)
        call(port, "load", case, self._instance.load, _copy(params))
        initial = to_stages({"parameters": call(port, "parameters", case, self._instance.parameters)}, port, "parameters()", case)
        missing = sorted(set(params) - set(initial["parameters"]))
        if missing:
            raise ParityError(f"port {port}: parameters() lacks {', '.join(missing)} after load()", case=case.name)
        self.initial = initial["parameters"]

    def _open_isolated(self) -> None:
        from parity.trace.file import TraceReader

        if self.recorded is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="parity-")
            self.recorded = record_isolated(self.case, [(self.port, self.dtype)], self._tmp.name)[0]
        path, error = self.recorded
        if os.path.exists(error):
            with open(error) as fh:
                raise ParityError(f"isolated port {self.port} failed: {fh.read().strip()}", case=self.case.name)
        self._reader = TraceReader(path)
        self.manifest = dict(self._reader.manifest)
        self.initial = dict(self._reader.initial)
        self._steps_iter = self._reader.steps()

    def step(self, batch: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
        """Run (or read) the next step; return its checked, copied ``{stage: {name: array}}``."""
        started = time.perf_counter()
        i = self.steps
        try:
            if self._steps_iter is not None:
                out = next(self._steps_iter, None)
                if out is None:
                    raise ParityError(f"isolated port {self.port} recorded {i} steps, the case has {self.case.steps}", case=self.case.name)
            else:
                if self._rng is not None:
                    batch = perturbed(batch, self._rng)
                out = call(self.port, f"step {i}", self.case, self._instance.step, _copy(batch))
                try:
                    out = to_stages(out, self.port, f"step {i}", self.case, summary=self.summary, copy=self.copy)
                except ParityError as exc:  # a protocol break: the port's fault, named with its phase
                    raise PortError(self.port, f"step {i}", str(exc), case=self.case.name) from None
                out.setdefault("inputs", _copy(batch))
        finally:
            self.seconds += time.perf_counter() - started
        self.steps += 1
        return out

    def close(self) -> None:
        """Release the port (its ``close()``, the isolated run's files)."""
        close = getattr(self._instance, "close", None)
        self._instance = None
        if self._reader is not None:
            self._reader.close()
            self._reader = self._steps_iter = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        if callable(close):
            close()


def record_isolated(case: Case, jobs: list[tuple[str, str]], directory: str) -> list[tuple[str, str]]:
    """Record ``jobs`` ([(port, dtype)]) of ``case`` in ONE fresh interpreter (:mod:`parity.run.isolate`).

    Returns each job's (trace path, error path); a job that failed has its error file.
    """
    import json

    from parity.run.interpreter import python

    code = "from parity.run.isolate import main; raise SystemExit(main())"
    cmd = python(code, case.name, directory, json.dumps([list(j) for j in jobs]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ParityError(f"isolated ports {', '.join(p for p, _ in jobs)} failed: {last}", case=case.name)
    return [job_paths(directory, n) for n in range(len(jobs))]


def job_paths(directory: str, n: int) -> tuple[str, str]:
    """Return (trace path, error path) of isolated job ``n`` (:mod:`parity.run.isolate` writes them)."""
    return os.path.join(directory, f"{n}.trace"), os.path.join(directory, f"{n}.error")
