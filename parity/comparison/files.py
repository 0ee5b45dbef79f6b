"""Compare two trace files step by step: each record is read, compared and dropped.

``parity compare`` runs this: memory holds two :class:`~parity.trace.memory.Window` (what the
diagnosis reads), never the traces.
"""

from __future__ import annotations

from parity.comparison.comparator import Comparator
from parity.trace.health import HealthTracker
from parity.trace.memory import Window, WindowRecorder

__all__ = ["compare_files"]


def compare_files(path_a: str, path_b: str, *, cost=None, keep: str = "window", window: int = 2,
                  partial: bool = False):
    """Compare two trace files step by step, reading each record as it is compared.

    Memory holds the two :class:`~parity.trace.memory.Window` (what the diagnosis reads), not the
    traces. Returns ``(comparison, window_a, window_b)``; a window's ``interrupted`` is the
    step count of a file whose run was cut off (None when complete), its ``n_steps`` the steps
    the file holds. ``partial``: when a trace was cut off, the steps both hold are compared and
    the other's remaining steps are not (``comparison.steps`` says how many were; no step-count issue);
    otherwise different step counts are a structure issue.
    """
    from parity.trace.file import open_trace

    def stream(path):
        opened = open_trace(path)
        if isinstance(opened, tuple):  # format 1: read whole (the .npz is one compressed archive)
            manifest, initial, steps = opened
            return manifest, initial, iter(steps), None
        return opened.manifest, opened.initial, opened.steps(), opened

    ma, ia, sa, ra = stream(path_a)
    mb, ib, sb, rb = stream(path_b)
    wa, wb = Window(dict(ma), ia), Window(dict(mb), ib)
    reca = WindowRecorder(wa, before=window, after=window, keep_all=keep == "all")
    recb = WindowRecorder(wb, before=window, after=window, keep_all=keep == "all")
    ha, hb = HealthTracker(ia), HealthTracker(ib)

    def freeze(k):
        reca.keep_around(k)
        recb.keep_around(k)

    cmp = Comparator(ma, mb, cost=cost, keep=keep, before=window, after=window, on_divergence=freeze,
                     initial=(ia, ib))
    while True:
        a, b = next(sa, None), next(sb, None)
        for step, rec, health in ((a, reca, ha), (b, recb, hb)):
            if step is not None:
                rec.add(step)
                health.add(step)
        if a is None or b is None:
            break
        cmp.add(a, b)
        del a, b
        reca.trim()
        recb.trim()
    for rest, rec, health in ((sa, reca, ha), (sb, recb, hb)):
        for step in rest:  # the longer trace's remaining steps: counted (a structure issue), not compared
            rec.add(step)
            rec.trim()
            health.add(step)
    for w, reader, health in ((wa, ra, ha), (wb, rb, hb)):
        w.health = health.result()
        w.interrupted = reader.interrupted if reader is not None else None
        w.manifest["steps"] = w.n_steps
    cut = partial and (wa.interrupted is not None or wb.interrupted is not None)
    common = cmp.steps
    return (cmp.finish(common, common) if cut else cmp.finish(wa.n_steps, wb.n_steps)), wa, wb
