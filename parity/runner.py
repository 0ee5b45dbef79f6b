"""Run ports of a case from the same weights and data, record traces, compare them.

Computation only: :mod:`parity.report` formats what this returns.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable, Mapping

import numpy as np

from . import __version__
from .cases import FRAMEWORKS, Case, PortSpec, get_case, refusals_ok
from .compare import Comparison, compare
from .data import batches as draw_batches
from .errors import ParityError, PortError
from .init import draw_parameters
from .trace import Trace, load as load_trace

__all__ = ["load_port_module", "load_user_port", "run_port", "run_case", "CaseResult", "PORT_FUNCTIONS", "ResumedPort"]

#: The public functions a port module exposes (the reference modules and a user's file alike).
PORT_FUNCTIONS = ("build", "framework_info")


def _check_port_module(mod: ModuleType, where: str) -> ModuleType:
    missing = [f for f in PORT_FUNCTIONS if not callable(getattr(mod, f, None))]
    if missing:
        raise ParityError(f"port module {where} does not define {', '.join(missing)} (see docs/ports.md)")
    return mod


def load_port_module(framework: str, module: str) -> ModuleType:
    """Import the built-in port module ``module`` of ``framework`` (lazily imports the framework)."""
    if framework not in FRAMEWORKS:
        raise ParityError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    name = f"{FRAMEWORKS[framework]}.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == name or name.startswith(exc.name + ".")):
            raise ParityError(f"there is no {framework} port for module {module!r} ({name})") from None
        raise ParityError(f"cannot import {name}: {exc}") from None
    return _check_port_module(mod, name)


def load_user_port(path: str) -> ModuleType:
    """Import a user's port file; any failure to load is a one-line :class:`ParityError`."""
    if not os.path.isfile(path):
        raise ParityError(f"port file {path} does not exist")
    name = "parity_user_port_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ParityError(f"port file {path} is not a Python module")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:  # a user's file can fail in any way; report it in one line
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ParityError(f"port file {path} does not load: {type(exc).__name__}: {line}") from None
    return _check_port_module(mod, path)


def _call(port: str, phase: str, case: Case, fn, *args):
    try:
        return fn(*args)
    except ParityError:
        raise
    except Exception as exc:  # the framework's own error, reported as the port's
        raise PortError(port, phase, exc, case=case.name) from exc


def _to_numpy(stages: Mapping[str, Mapping[str, object]]) -> dict[str, dict[str, np.ndarray]]:
    return {stage: {k: np.asarray(v) for k, v in arrays.items()} for stage, arrays in stages.items()}


def run_port(
    case: Case,
    port: str,
    dtype: str,
    *,
    module: ModuleType | None = None,
    source: str | None = None,
    isolate: bool = True,
) -> Trace:
    """Run one port of ``case`` in ``dtype`` and return its trace.

    Args:
        case: the case.
        port: ``framework[:variant]``.
        dtype: "float64" or "float32".
        module: a port module to use instead of the built-in one (a user's port).
        source: where ``module`` came from, for the manifest.
        isolate: run ports the case marks ``isolate`` in a subprocess (False inside that subprocess).

    Raises:
        PortError: the port's framework raised (building, loading or stepping).
        ParityError: the port broke the protocol (missing parameters, wrong shapes).
    """
    spec = PortSpec.parse(port)
    if module is None and isolate and port in case.option("isolate", ()):
        return _run_isolated(case, port, dtype)
    mod = module or load_port_module(spec.framework, case.module)
    params = draw_parameters(case, dtype)
    data = draw_batches(case, dtype)
    info = dict(_call(port, "framework_info", case, mod.framework_info))
    instance = _call(port, "build", case, mod.build, case, dtype, spec.variant)
    manifest = {
        "case": case.name,
        "port": port,
        "framework": spec.framework,
        "framework_version": info.get("version", "?"),
        "device": info.get("device", "cpu"),
        "dtype": dtype,
        "seed": case.seed,
        "source": source or getattr(mod, "__name__", "?"),
        "parity_version": __version__,
    }
    settings = getattr(instance, "settings", None)
    if callable(settings):
        manifest["settings"] = _call(port, "settings", case, settings)
    trace = Trace(manifest=manifest)
    started = time.perf_counter()
    try:
        _call(port, "load", case, instance.load, params)
        initial = _to_numpy({"parameters": _call(port, "parameters", case, instance.parameters)})["parameters"]
        missing = sorted(set(params) - set(initial))
        if missing:
            raise ParityError(f"port {port}: parameters() lacks {', '.join(missing)} after load()", case=case.name)
        trace.initial = initial
        for batch in data:
            out = _to_numpy(_call(port, f"step {len(trace.steps)}", case, instance.step, dict(batch)))
            out.setdefault("inputs", {k: np.asarray(v) for k, v in batch.items()})
            trace.add_step(out)
    finally:
        close = getattr(instance, "close", None)
        if callable(close):
            close()
    trace.manifest["seconds"] = round(time.perf_counter() - started, 4)
    return trace


class ResumedPort:
    """Wrap a port: run ``at`` steps, save a checkpoint, restore it into a fresh port, go on.

    The framework supplies ``save(port, directory) -> path`` and ``restore(case, dtype, path)
    -> port`` (TF1 Saver, tf.train.Checkpoint, torch state_dict); the trace of the resumed
    run must equal the uninterrupted one (seed 002).
    """

    def __init__(self, case, dtype, make, save, restore, at: int):
        self.case, self.dtype, self.at = case, dtype, at
        self._save, self._restore = save, restore
        self.port, self.done = make(), 0

    def parameters(self):
        return self.port.parameters()

    def load(self, params):
        self.port.load(params)

    def step(self, batch):
        if self.done == self.at:
            with tempfile.TemporaryDirectory(prefix="parity-resume-") as tmp:
                path = self._save(self.port, tmp)
                self.close()
                self.port = self._restore(self.case, self.dtype, path)
        self.done += 1
        return self.port.step(batch)

    def close(self):
        close = getattr(self.port, "close", None)
        if callable(close):
            close()


def _run_isolated(case: Case, port: str, dtype: str) -> Trace:
    """Run a port in a fresh interpreter (Keras 2 graph mode cannot share a process with eager TF)."""
    with tempfile.TemporaryDirectory(prefix="parity-") as tmp:
        path = os.path.join(tmp, "trace.npz")
        cmd = [sys.executable, "-m", "parity", "record", case.name, "--port", port, "--dtype", dtype, "-o", path, "--in-process"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ParityError(f"isolated port {port} failed: {last}", case=case.name)
        return load_trace(path)


@dataclass
class CaseResult:
    """Everything one case produced: traces, refusals and comparisons, per dtype."""

    case: Case
    traces: dict[str, dict[str, Trace]] = field(default_factory=dict)
    errors: dict[str, dict[str, PortError]] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ports(self) -> list[str]:
        seen: list[str] = []
        for per in list(self.traces.values()) + list(self.errors.values()):
            seen += [p for p in per if p not in seen]
        return seen

    @property
    def passed(self) -> bool:
        """Whether the case behaved as it must: all ports agree, or (expect="error") all refuse."""
        if self.case.expect == "error":  # each port refused, with the refusal the case states for it
            return refusals_ok(self.case, self.errors, self.traces)
        if self.case.expect == "diverge":
            return any(not c.ok for c in self.comparisons)
        return not any(self.errors.values()) and all(c.ok for c in self.comparisons)


def run_case(
    case: Case | str,
    *,
    dtypes: Iterable[str] | None = None,
    ports: Iterable[str] | None = None,
    modules: Mapping[str, ModuleType] | None = None,
    sources: Mapping[str, str] | None = None,
    pairs: str = "auto",
) -> CaseResult:
    """Run every port of a case in every dtype, and compare the traces.

    Args:
        case: a case or its name.
        dtypes: the dtypes (default: the case's).
        ports: the ports (default: the case's).
        modules: port -> module to use instead of the built-in one (a user's port).
        sources: port -> where that module came from.
        pairs: "all" (every pair of ports), "reference" (the first port against each other)
            or "auto" (every pair of the main ports -- tf1, tf2, torch, numpy -- and the first
            port against each variant port, or against every port when it is a variant itself).
    """
    case = get_case(case) if isinstance(case, str) else case
    ports = list(ports or case.ports)
    modules = dict(modules or {})
    result = CaseResult(case=case)
    for dtype in dtypes or case.dtypes:
        traces: dict[str, Trace] = {}
        errors: dict[str, PortError] = {}
        for port in ports:
            started = time.perf_counter()
            try:
                traces[port] = run_port(case, port, dtype, module=modules.get(port), source=(sources or {}).get(port))
            except PortError as exc:
                errors[port] = exc
            except ParityError as exc:  # the port broke the protocol or does not exist
                errors[port] = PortError(port, "setup", exc, case=case.name)
            result.seconds[f"{port}/{dtype}"] = round(time.perf_counter() - started, 4)
        result.traces[dtype] = traces
        result.errors[dtype] = errors
        names = [p for p in ports if p in traces]
        if pairs == "all":
            combos = list(itertools.combinations(names, 2))
        elif pairs == "reference":
            combos = [(names[0], p) for p in names[1:]]
        else:  # every pair of the frameworks' main ports, and the reference against each variant
            main = [p for p in names if ":" not in p]
            combos = list(itertools.combinations(main, 2))
            # (a variant as the reference -- the distributed cases' single device -- meets every port)
            combos += [(names[0], p) for p in names[1:] if ":" in p + names[0] and (names[0], p) not in combos]
            if not main:
                combos = [(names[0], p) for p in names[1:]]
        for pa, pb in combos:
            result.comparisons.append(compare(traces[pa], traces[pb], cost=case.cost))
    return result
