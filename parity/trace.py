"""Traces: what a port did, step by step, as named arrays by stage; saved as one ``.npz``.

A trace file is an ``.npz`` archive holding every array under ``step/stage/name`` and a
JSON manifest under ``__manifest__.json`` (stored as text, so it loads with
``allow_pickle=False``). Two traces recorded in different processes or on different
machines compare like two traces recorded side by side.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from .errors import ParityError

__all__ = ["STAGES", "STAGE_LABELS", "Trace", "save", "load", "stage_label", "TRACE_FORMAT"]

#: Stages in the order they are compared: the first divergence is the earliest step,
#: then the earliest stage in this order.
STAGES = (
    "inputs",
    "forward",
    "loss",
    "gradients",
    "processed_gradients",
    "learning_rate",
    "parameters",
    "slots",
    "state",
    "constrained",
)
STAGE_LABELS = {s: s.replace("_", " ") for s in STAGES}
TRACE_FORMAT = 1
_MANIFEST_KEY = "__manifest__.json"
_INITIAL = "initial"


def stage_label(stage: str) -> str:
    """Return the human name of a stage ("processed gradients")."""
    return STAGE_LABELS.get(stage, stage)


@dataclass
class Trace:
    """Hold one port's run of one case.

    Attributes:
        manifest: case, port, framework and its version, device, dtype, seed, stages, steps.
        initial: the parameters the port reported after loading (before step 0).
        steps: one ``{stage: {name: array}}`` per step.
    """

    manifest: dict
    initial: dict[str, np.ndarray] = field(default_factory=dict)
    steps: list[dict[str, dict[str, np.ndarray]]] = field(default_factory=list)

    @property
    def case(self) -> str:
        return self.manifest.get("case", "?")

    @property
    def port(self) -> str:
        return self.manifest.get("port", "?")

    @property
    def dtype(self) -> str:
        return self.manifest.get("dtype", "?")

    def add_step(self, stages: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Append one step's arrays, checking stage names and converting to numpy."""
        step: dict[str, dict[str, np.ndarray]] = {}
        for stage, arrays in stages.items():
            if stage not in STAGES:
                raise ParityError(
                    f"port {self.port} returned unknown stage {stage!r}; stages are {', '.join(STAGES)}",
                    case=self.case,
                )
            step[stage] = {str(k): np.array(v, copy=True) for k, v in arrays.items()}
        self.steps.append(step)

    def get(self, step: int, stage: str, name: str) -> np.ndarray:
        """Return one array, or raise a :class:`ParityError` naming what is missing."""
        try:
            return self.steps[step][stage][name]
        except (IndexError, KeyError):
            raise ParityError(f"trace of {self.port} has no {stage_label(stage)} {name!r} at step {step}") from None

    def series(self, stage: str, name: str) -> np.ndarray:
        """Stack one tensor over all steps (``[steps, *shape]``)."""
        return np.stack([s[stage][name] for s in self.steps])

    def items(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Yield (step, stage, name, array) in comparison order."""
        for i, step in enumerate(self.steps):
            for stage in STAGES:
                for name, arr in step.get(stage, {}).items():
                    yield i, stage, name, arr


def save(trace: Trace, path: str | os.PathLike) -> str:
    """Write ``trace`` to ``path`` (``.npz`` is appended when missing); return the path."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    arrays: dict[str, np.ndarray] = {}
    for name, arr in trace.initial.items():
        arrays[f"{_INITIAL}/parameters/{name}"] = arr
    for i, stage, name, arr in trace.items():
        arrays[f"{i}/{stage}/{name}"] = arr
    manifest = dict(trace.manifest)
    manifest["format"] = TRACE_FORMAT
    manifest["steps"] = len(trace.steps)
    manifest["stages"] = [s for s in STAGES if any(s in st for st in trace.steps)]
    arrays[_MANIFEST_KEY] = np.array(json.dumps(manifest, sort_keys=True))
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def load(path: str | os.PathLike) -> Trace:
    """Read a trace file; a missing or corrupt file is a one-line :class:`ParityError`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ParityError(f"trace file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _MANIFEST_KEY not in npz.files:
                raise ParityError(f"{path} is not a parity trace (no manifest)")
            manifest = json.loads(str(npz[_MANIFEST_KEY]))
            if manifest.get("format") != TRACE_FORMAT:
                raise ParityError(f"{path}: trace format {manifest.get('format')!r}, expected {TRACE_FORMAT}")
            trace = Trace(manifest=manifest)
            steps: dict[int, dict[str, dict[str, np.ndarray]]] = {}
            for key in npz.files:
                if key == _MANIFEST_KEY:
                    continue
                step, stage, name = key.split("/", 2)
                if step == _INITIAL:
                    trace.initial[name] = npz[key]
                    continue
                if stage not in STAGES:
                    raise ParityError(f"{path}: unknown stage {stage!r} in entry {key!r}")
                steps.setdefault(int(step), {}).setdefault(stage, {})[name] = npz[key]
    except ParityError:
        raise
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, EOFError) as exc:
        raise ParityError(f"{path} is not a readable trace file ({type(exc).__name__}: {exc})") from None
    n = manifest.get("steps", len(steps))
    if sorted(steps) != list(range(len(steps))) or len(steps) != n:
        raise ParityError(f"{path}: steps {sorted(steps)[:5]}... do not match the manifest's {n}")
    trace.steps = [steps[i] for i in range(n)]
    return trace
