"""One running port inside :func:`parity.run.runner.run_case`: its window, health series and trace file;
and the conditioning run (:func:`open_conditioning`) the float32 envelope uses."""

from __future__ import annotations

import numpy as np

from parity.comparison.envelope import Drift
from parity.trace.health import HealthTracker
from parity.trace.memory import Window, WindowRecorder

__all__ = ["COND", "SHADOW", "LivePort", "conditioning_port", "new_run", "open_conditioning", "open_shadow", "summarized"]


class LivePort:
    """One running port of one dtype inside :func:`~parity.run.runner.run_case`: its run, window, health, file."""

    def __init__(self, run, keep: str, window: int, writer=None, summary: bool | None = None):
        self.run = run
        self.window = Window(dict(run.manifest), run.initial)
        self.recorder = WindowRecorder(self.window, before=window, after=window, keep_all=keep == "all")
        # the health series summarize a step's tensors only where a summary is read next (``summary``: a summary-mode
        # comparison; a summary trace file), else they take the sums alone (the same numbers)
        summary = bool(getattr(writer, "summary", False)) if summary is None else summary
        self.health = HealthTracker(run.initial, remember=summary)
        self.writer = writer
        if writer is not None:
            writer.initial(run.initial)

    def add(self, step) -> None:
        self.recorder.add(step)
        self.health.add(step)
        if self.writer is not None:
            self.writer.step(step)

    def finish(self, complete: bool) -> Window:
        self.window.health = self.health.result()
        self.window.manifest["steps"] = self.window.n_steps
        self.window.manifest["seconds"] = round(self.run.seconds, 4)
        if self.writer is not None:
            self.writer.close(complete=complete)
        return self.window


#: The conditioning run's and the float32 shadow's keys among the runs stepped together.
COND, SHADOW = ("conditioning", ""), ("shadow", "")


def new_run(case, port, dtype, modules, sources, workers, *, recorded=None, perturb=None):
    """A port's run, not yet opened: in its framework's worker process when ``workers`` (a user's
    module and a port recorded in a fresh interpreter stay here), else in this process."""
    from parity.run.boundary import PortRun
    from parity.run.remote_runs import RemoteRun
    from parity.run.workers import group_of

    if workers and port not in modules and recorded is None and group_of(port):
        return RemoteRun(case, port, dtype, perturb=perturb)
    return PortRun(case, port, dtype, module=modules.get(port), source=sources.get(port), recorded=recorded,
                   perturb=perturb)


def _open(case, port, dtype, perturb, modules, sources, workers):
    from parity.errors import ParityError, PortError

    run = new_run(case, port, dtype, modules, sources, workers, perturb=perturb)
    try:
        run.open()
    except (PortError, ParityError):
        run.close()
        return None
    return port, run, Drift()


def open_conditioning(case, f32_ports, live, modules, sources, recorded, workers):
    """Open the conditioning run of the first float32 port: (port, run, its Drift), or None.

    The port again in float64, its weights and data perturbed (:func:`parity.cases.params.perturbed`).
    None when no port runs in both dtypes, when the port is recorded in a fresh interpreter
    (isolated: it cannot be perturbed) or when it fails to open (the envelope then goes without).
    """
    port = conditioning_port(case, f32_ports, live, recorded)
    return None if port is None else _open(case, port, "float64", 0, modules, sources, workers)


def conditioning_port(case, f32_ports, live, recorded):
    """The port :func:`open_conditioning` would run again (the first float32 port that also runs in float64, unless it
    is isolated or recorded), or None."""
    both = [p for p in f32_ports if ("float64", p) in live]
    if not both or both[0] in case.option("isolate", ()) or (both[0], "float64") in recorded:
        return None
    return both[0]


def open_shadow(case, f64_ports, modules, sources, workers):
    """Open the float32 shadow of the first float64 port (run, never compared): (port, run, Drift), or None.

    A float64-only run measures the reference's float32 drift with it, for the float64 envelope.
    """
    if not f64_ports or f64_ports[0] in case.option("isolate", ()) or "float32" not in case.dtypes:
        return None
    return _open(case, f64_ports[0], "float32", None, modules, sources, workers)


def summarized(step: dict) -> dict:
    """The step with every tensor of more than :data:`~parity.trace.memory.SMALL` elements as a summary."""
    from parity.trace.summary import summarize
    from parity.trace.memory import SMALL

    return {stage: {n: summarize(v) if np.size(v) > SMALL else v for n, v in arrays.items()} for stage, arrays in step.items()}
