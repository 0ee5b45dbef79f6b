"""Resume a port mid-run from a checkpoint: the trace must equal the uninterrupted run (seed 002)."""

from __future__ import annotations

import tempfile

__all__ = ["ResumedPort"]


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
