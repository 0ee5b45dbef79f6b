"""The stages a port reports each step, in comparison order, and the sizes traces are built on."""

from __future__ import annotations

__all__ = ["STAGES", "STAGE_LABELS", "SMALL", "TRACE_FORMAT", "stage_label"]

#: Stages in the order they are compared: the first divergence is the earliest step,
#: then the earliest stage in this order.
STAGES = (
    "inputs",
    "forward",
    "regularization",
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
# programs (parity diff): "loss" is the loss the update minimises (data loss + regularisation),
# "regularization" its regularisation term where both sides can tell it apart, "processed_gradients"
# the effective gradient (after clipping, with a coupled decay's wd*w): docs/stages.md
#: Current trace file format (:mod:`parity.trace.file`); format 1 (.npz) is still read.
TRACE_FORMAT = 2
#: Tensors of at most this many elements are kept for every step of a streamed run, and in
#: full in a summary-mode trace.
SMALL = 16


def stage_label(stage: str) -> str:
    """Return the human name of a stage ("processed gradients")."""
    return STAGE_LABELS.get(stage, stage)
