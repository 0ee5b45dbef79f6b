"""TensorBoard event files for any run (``--tensorboard DIR``), the same tags for every framework.

The runner hands each port's steps to a :class:`TensorBoardWriter` as they arrive (then
drops them), so the files are written from the canonical names the comparison uses: the
TF1 and the torch port of a case share every tag and overlay in TensorBoard. One run
directory per port: ``DIR/<case>/<dtype>/<port>``; point TensorBoard at ``DIR``.

Tags (``<name>`` is the canonical tensor name):

* scalars: ``loss``, ``learning_rate``, ``gradient_norm/<name>``, ``update_ratio/<name>``
  (``||w_{t+1} - w_t|| / ||w_t||``, the seeds' "is this layer moving" number);
* histograms: ``parameters/<name>``, ``gradients/<name>``, ``updates/<name>``.

Written with the ``tensorboard`` package's own event writer and protos (imported lazily;
neither TensorFlow nor torch is needed).
"""

from __future__ import annotations

import os
import re
from typing import Mapping

import numpy as np

__all__ = ["TensorBoardWriter", "run_dir", "available", "TAGS"]

TAGS = ("loss", "learning_rate", "gradient_norm/", "update_ratio/", "parameters/", "gradients/", "updates/")
_BINS = 30


def available() -> str | None:
    """None when the ``tensorboard`` package can be imported, else the reason with the install command."""
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError:
        return "the tensorboard package is not installed (pip install -c constraints.txt tensorboard)"
    return None


def run_dir(root: str, case: str, dtype: str, port: str) -> str:
    """The run directory of one port (``:`` of a variant port, or of a ``diff:`` case, becomes ``-``)."""

    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)

    return os.path.join(root, safe(case), dtype, safe(port))


def _histogram(values: np.ndarray):
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        edges = np.array([lo, hi + (abs(hi) * 1e-6 or 1e-12)])
    else:
        edges = np.linspace(lo, hi, _BINS + 1)
    counts, edges = np.histogram(v, bins=edges)
    return HistogramProto(
        min=lo,
        max=hi,
        num=float(v.size),
        sum=float(v.sum()),
        sum_squares=float(np.dot(v, v)),
        bucket_limit=[float(e) for e in edges[1:]],
        bucket=[float(c) for c in counts],
    )


class TensorBoardWriter:
    """Write one port's run as TensorBoard events, step by step (holds the previous parameters only).

    Args:
        root: the ``--tensorboard`` directory.
        case, dtype, port: which run (the run directory's name).
        initial: the parameters as loaded (the first update's base).
    """

    def __init__(self, root: str, case: str, dtype: str, port: str, initial: Mapping[str, np.ndarray] | None = None):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self.dir = run_dir(root, case, dtype, port)
        os.makedirs(self.dir, exist_ok=True)
        self._writer = EventFileWriter(self.dir)
        self._prev = {k: np.asarray(v, np.float64) for k, v in (initial or {}).items()}
        self.step = 0

    def _emit(self, values: list) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        if values:
            self._writer.add_event(Event(step=self.step, summary=Summary(value=values)))

    def add(self, stages: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Write one step's ``{stage: {name: array}}`` (summarised tensors are skipped)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = []

        def scalar(tag, x):
            x = float(np.asarray(x, dtype=np.float64).reshape(-1)[0])
            values.append(Summary.Value(tag=tag, simple_value=x))

        def hist(tag, x):
            h = _histogram(x)
            if h is not None:
                values.append(Summary.Value(tag=tag, histo=h))

        loss = stages.get("loss", {}).get("loss")
        if isinstance(loss, np.ndarray) and loss.size == 1:
            scalar("loss", loss)
        for name, lr in stages.get("learning_rate", {}).items():
            if isinstance(lr, np.ndarray) and lr.size == 1:
                scalar("learning_rate" if name == "lr" else f"learning_rate/{name}", lr)
        grads = {k: v for k, v in stages.get("gradients", {}).items() if isinstance(v, np.ndarray)}
        for name, g in grads.items():
            g64 = np.asarray(g, np.float64)
            scalar(f"gradient_norm/{name}", np.sqrt(np.sum(g64 * g64)))
            hist(f"gradients/{name}", g64)
        params = {k: v for k, v in stages.get("parameters", {}).items() if isinstance(v, np.ndarray)}
        params.update({k: v for k, v in stages.get("constrained", {}).items() if isinstance(v, np.ndarray)})
        for name, w in params.items():
            w64 = np.asarray(w, np.float64)
            hist(f"parameters/{name}", w64)
            prev = self._prev.get(name)
            if prev is not None and prev.shape == w64.shape:
                delta = w64 - prev
                hist(f"updates/{name}", delta)
                base = float(np.sqrt(np.sum(prev * prev)))
                if base > 0:
                    scalar(f"update_ratio/{name}", np.sqrt(np.sum(delta * delta)) / base)
            self._prev[name] = w64
        self._emit(values)
        self.step += 1

    def close(self) -> None:
        self._writer.flush()
        self._writer.close()
        self._prev = {}
