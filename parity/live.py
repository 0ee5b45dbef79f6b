"""One running port inside :func:`parity.runner.run_case`: its window, health series and trace file."""

from __future__ import annotations

import numpy as np

from .health import HealthTracker
from .trace import Window, WindowRecorder

__all__ = ["LivePort", "summarized"]


class LivePort:
    """One running port of one dtype inside :func:`~parity.runner.run_case`: its run, window, health, file."""

    def __init__(self, run, keep: str, window: int, writer=None):
        self.run = run
        self.window = Window(dict(run.manifest), run.initial)
        self.recorder = WindowRecorder(self.window, before=window, after=window, keep_all=keep == "all")
        self.health = HealthTracker(run.initial)
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


def summarized(step: dict) -> dict:
    """The step with every tensor of more than :data:`~parity.trace.SMALL` elements as a summary."""
    from .summary import summarize
    from .trace import SMALL

    return {stage: {n: summarize(v) if np.size(v) > SMALL else v for n, v in arrays.items()} for stage, arrays in step.items()}
