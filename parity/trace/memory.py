"""Traces: what a port did, step by step, as named arrays by stage.

Two in-memory forms share one read API (``manifest``, ``initial``, ``steps[i][stage][name]``,
``get``, ``series``, ``case``/``port``/``dtype``):

* :class:`Trace` holds every step (a trace built by hand in a test, :func:`load` of a file,
  ``run_port``);
* :class:`Window` is what a streamed run keeps (``run_case(...).traces[dtype][port]``):

  - ``initial``: the parameters after ``load()``, in full;
  - every step's tensors of at most :data:`SMALL` elements (loss, learning rate,
    global_step, small biases), so ``[s["learning_rate"]["lr"] for s in w.steps]`` works;
  - full tensors of the steps around each first divergence the run found (``before`` = 2
    steps before it, the divergence step, ``after`` = 2 steps after it: one such span per
    compared pair the port belongs to), and of the last ``before + 1`` steps of the run;
  - ``health``: per layer gradient norm and variance, update/weight ratio, loss and lr per
    step (:mod:`parity.trace.health`), computed as the steps went by.

  ``len(w.steps)`` is the number of steps run; ``w.steps[i]`` is always a mapping of
  stages. Reading a tensor that was dropped (a large tensor of a step outside the kept
  span) raises :class:`OutsideWindow`, an ``IndexError`` and a :class:`ParityError`, never a
  wrong value and never ``None``: a diagnosis treats it as "no evidence". ``name in
  w.steps[i][stage]`` is true for a dropped tensor (it was reported); ``w.kept(i)`` says
  whether step ``i`` is held in full, ``w.kept_steps`` lists those steps.

Trace files (format 2, written step by step, summary mode, crash-safe) are
:mod:`parity.trace.file`; :func:`save` and :func:`load` here are its entry points.
"""

from __future__ import annotations

import os
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from parity.errors import ParityError

__all__ = [
    "STAGES",
    "STAGE_LABELS",
    "SMALL",
    "Trace",
    "Window",
    "WindowRecorder",
    "OutsideWindow",
    "save",
    "load",
    "stage_label",
    "TRACE_FORMAT",
    "to_step",
]

from parity.trace.stages import SMALL, STAGE_LABELS, STAGES, TRACE_FORMAT, stage_label

class OutsideWindow(ParityError, IndexError):
    """A tensor of a step a :class:`Window` did not keep in full (no evidence either way)."""


def _size(x) -> int:
    return int(getattr(x, "size", 1))


def to_step(stages: Mapping[str, Mapping[str, object]], *, port: str = "?", case: str | None = None) -> dict:
    """Check stage names and copy one step's arrays into numpy (summaries pass through)."""
    from parity.trace.summary import Summary

    step: dict[str, dict[str, object]] = {}
    for stage, arrays in stages.items():
        if stage not in STAGES:
            raise ParityError(f"port {port} returned unknown stage {stage!r}; stages are {', '.join(STAGES)}", case=case)
        step[stage] = {str(k): v if isinstance(v, Summary) else np.array(v, copy=True) for k, v in arrays.items()}
    return step


class _TraceAPI:
    """The read API both trace forms share."""

    manifest: dict

    @property
    def case(self) -> str:
        return self.manifest.get("case", "?")

    @property
    def port(self) -> str:
        return self.manifest.get("port", "?")

    @property
    def dtype(self) -> str:
        return self.manifest.get("dtype", "?")

    def get(self, step: int, stage: str, name: str) -> np.ndarray:
        """Return one array, or raise a :class:`ParityError` naming what is missing."""
        try:
            return self.steps[step][stage][name]
        except OutsideWindow:
            raise
        except (IndexError, KeyError):
            raise ParityError(f"trace of {self.port} has no {stage_label(stage)} {name!r} at step {step}") from None

    def series(self, stage: str, name: str) -> np.ndarray:
        """Stack one tensor over all steps (``[steps, *shape]``)."""
        return np.stack([np.asarray(s[stage][name]) for s in self.steps])

    def items(self) -> Iterator[tuple[int, str, str, np.ndarray]]:
        """Yield (step, stage, name, array) in comparison order."""
        for i, step in enumerate(self.steps):
            for stage in STAGES:
                for name, arr in step.get(stage, {}).items():
                    yield i, stage, name, arr


@dataclass
class Trace(_TraceAPI):
    """Hold one port's run of one case, every step in memory.

    Attributes:
        manifest: case, port, framework and its version, device, dtype, seed, stages, steps.
        initial: the parameters the port reported after loading (before step 0).
        steps: one ``{stage: {name: array}}`` per step.
        interrupted: for a trace loaded from a file whose writer stopped before the end
            (a crash, Ctrl-C): the number of steps it holds; None for a complete trace.
    """

    manifest: dict
    initial: dict[str, np.ndarray] = field(default_factory=dict)
    steps: list[dict[str, dict[str, np.ndarray]]] = field(default_factory=list)
    interrupted: int | None = None

    def add_step(self, stages: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Append one step's arrays, checking stage names and converting to numpy."""
        self.steps.append(to_step(stages, port=self.port, case=self.case))

    def kept(self, step: int) -> bool:
        return 0 <= step < len(self.steps)

    @property
    def kept_steps(self) -> list[int]:
        return list(range(len(self.steps)))


class _PartialStage(Mapping):
    """One stage of a step outside the window: small tensors readable, the others raise."""

    def __init__(self, where: str, names: tuple[str, ...], small: Mapping[str, np.ndarray]):
        self._where, self._names, self._small = where, names, small

    def __getitem__(self, name):
        if name in self._small:
            return self._small[name]
        if name in self._names:
            raise OutsideWindow(f"{self._where} {name!r} is outside the kept window")
        raise KeyError(name)

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)

    def __contains__(self, name):
        return name in self._names


class _PartialStep(Mapping):
    def __init__(self, where: str, layout: tuple, small: Mapping[str, Mapping[str, np.ndarray]]):
        self._where, self._layout, self._small = where, dict(layout), small

    def __getitem__(self, stage):
        names = self._layout[stage]
        return _PartialStage(f"{self._where}, {stage_label(stage)}", names, self._small.get(stage, {}))

    def __iter__(self):
        return iter(self._layout)

    def __len__(self):
        return len(self._layout)


class _WindowSteps:
    """``Window.steps``: a read-only sequence over every step run."""

    def __init__(self, window: "Window"):
        self._w = window

    def __len__(self) -> int:
        return self._w.n_steps

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"step {i} of a {n}-step run")
        full = self._w._full.get(i)
        if full is not None:
            return full
        layout, small = self._w._small_step(i)
        return _PartialStep(f"{self._w.port}: step {i} (kept: {self._w.kept_steps})", layout, small)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


class Window(_TraceAPI):
    """What a streamed run keeps of one port's trace (see the module docstring).

    The small tensors of every step are packed into one growing byte buffer (a step costs
    its values' bytes and two integers), so a long run's window stays the size of its
    kept steps.
    """

    def __init__(self, manifest: dict, initial: Mapping[str, np.ndarray] | None = None):
        self.manifest = manifest
        self.initial = dict(initial or {})
        self.health = None  # a parity.trace.health.Health, set by the runner
        self.interrupted = None
        self.n_steps = 0
        self._full: dict[int, dict] = {}
        self._layouts: list[tuple] = []  # (stage layout, small-tensor layout)
        self._layout_ids: dict[tuple, int] = {}
        self._layout_of = array("q")
        self._offset = array("q", [0])
        self._packed = bytearray()

    @property
    def steps(self) -> _WindowSteps:
        return _WindowSteps(self)

    def kept(self, step: int) -> bool:
        """Whether step ``step`` is held in full."""
        return step in self._full

    @property
    def kept_steps(self) -> list[int]:
        return sorted(self._full)

    def _pack(self, step: dict) -> None:
        stages = tuple((stage, tuple(arrays)) for stage, arrays in step.items())
        small, blobs = [], []
        for stage, arrays in step.items():
            for name, v in arrays.items():
                if isinstance(v, np.ndarray) and v.size <= SMALL:
                    small.append((stage, name, v.shape, v.dtype.str))
                    blobs.append(np.ascontiguousarray(v).tobytes())
        key = (stages, tuple(small))
        lid = self._layout_ids.get(key)
        if lid is None:
            lid = self._layout_ids[key] = len(self._layouts)
            self._layouts.append(key)
        self._layout_of.append(lid)
        for b in blobs:
            self._packed += b
        self._offset.append(len(self._packed))

    def _small_step(self, i: int) -> tuple[tuple, dict]:
        stages, small = self._layouts[self._layout_of[i]]
        pos, out = self._offset[i], {}
        for stage, name, shape, dtype in small:
            dt = np.dtype(dtype)
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            out.setdefault(stage, {})[name] = np.frombuffer(bytes(self._packed[pos : pos + n]), dtype=dt).reshape(shape).copy()
            pos += n
        return stages, out

    def release(self) -> None:
        """Drop every full tensor (initial parameters and kept steps); small tensors and health stay."""
        self._full.clear()
        self.initial = {}


#: Bytes of full steps a port's ring may hold besides the step just run (and, after a first
#: divergence, the most its "after" steps may hold): a small model keeps ``before`` steps
#: around a divergence, a large one (the seed-size convnet's float64 step is 111 MB) only the
#: divergence step itself, so memory stays that of one step per port.
RING_BYTES = 64 << 20


def _nbytes(step: dict) -> int:
    return sum(int(getattr(v, "nbytes", 0)) for arrays in step.values() for v in arrays.values())


class WindowRecorder:
    """Build a :class:`Window` step by step: a ring of the last steps, frozen around divergences.

    Args:
        window: the window to fill.
        before: full steps kept before a divergence (the ring holds ``before + 1``).
        after: full steps kept after it.
        keep_all: keep every step in full (tests of short cases; memory grows with steps).
        budget: bytes the ring may hold besides the newest step, and the most the steps kept
            after a divergence may hold (:data:`RING_BYTES`): large steps are kept fewer.
    """

    def __init__(self, window: Window, *, before: int = 2, after: int = 2, keep_all: bool = False,
                 budget: int = RING_BYTES):
        self.window, self.before, self.after, self.keep_all = window, before, after, keep_all
        self.budget = budget
        self._ring: deque[int] = deque()
        self._bytes: dict[int, int] = {}
        self._keep_until = -1
        self._after_bytes = 0

    def add(self, step: dict) -> None:
        """Record the next step (a dict from :func:`to_step`)."""
        w = self.window
        i = w.n_steps
        w._pack(step)
        w.n_steps += 1
        w._full[i] = step
        if self.keep_all:
            return
        size = self._bytes[i] = _nbytes(step)
        if i <= self._keep_until and self._after_bytes + size <= self.budget:
            self._after_bytes += size
            del self._bytes[i]
            return
        self._ring.append(i)
        while len(self._ring) > self.before + 1:
            self._drop_oldest()

    def trim(self) -> None:
        """Drop ring steps, oldest first, while the ring holds more than the budget.

        Called once the newest step is compared (a divergence there has frozen it): a step
        larger than the budget is then not held while the next one runs.
        """
        while self._ring and sum(self._bytes[j] for j in self._ring) > self.budget:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        old = self._ring.popleft()
        self.window._full.pop(old, None)
        self._bytes.pop(old, None)

    def keep_around(self, step: int) -> None:
        """Keep in full the steps ``step - before`` .. ``step + after`` (those not yet dropped)."""
        self._ring = deque(i for i in self._ring if i < step - self.before)
        self._bytes = {i: self._bytes[i] for i in self._ring if i in self._bytes}
        self._keep_until = max(self._keep_until, step + self.after)


def save(trace, path: str | os.PathLike, *, summary: bool = False) -> str:
    """Write a whole in-memory trace to ``path`` (format 2: :mod:`parity.trace.file`); return the path.

    ``.trace`` is appended when the name has no suffix. ``summary``: tensors of more than
    :data:`SMALL` elements are stored as statistics (:mod:`parity.trace.summary`).
    """
    from parity.trace.file import TraceWriter

    with TraceWriter(path, trace.manifest, summary=summary) as w:
        w.initial(trace.initial)
        for step in trace.steps:
            w.step(step)
    return w.path


def load(path: str | os.PathLike) -> Trace:
    """Read a trace file (format 2, or the format 1 ``.npz``) into memory.

    A file whose writer was interrupted loads as the steps it holds, with ``interrupted``
    set (and ``manifest["interrupted"]`` = "interrupted after k steps"); a corrupt or foreign
    file is a one-line :class:`ParityError`. To stream a long trace instead, use
    :class:`parity.trace.file.TraceReader`.
    """
    from parity.trace.file import open_trace

    reader = open_trace(path)
    if isinstance(reader, tuple):  # format 1: (manifest, initial, steps) read whole
        manifest, initial, steps = reader
        return Trace(manifest=manifest, initial=initial, steps=steps)
    trace = Trace(manifest=dict(reader.manifest), initial=reader.initial)
    trace.steps = list(reader.steps())
    trace.interrupted = reader.interrupted
    trace.manifest["steps"] = len(trace.steps)
    trace.manifest["stages"] = [s for s in STAGES if any(s in st for st in trace.steps)]
    if reader.interrupted is not None:
        trace.manifest["interrupted"] = f"interrupted after {reader.interrupted} steps"
    return trace
