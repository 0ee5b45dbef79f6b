"""Summaries of a port's tensors computed where they live (a summary recording: :func:`parity.run.boundary.to_stages`).

A port's torch tensors are summarized by ``torch_impl.trace.stats.summarize_step`` (loaded by name through
:data:`parity.run.frameworks.PORT_PACKAGES`: parity imports no framework): on a GPU with torch ops and one small
host copy per step instead of a copy of every tensor; on the CPU on a view of the tensor's memory, the summary
the trace writer makes of the host copy, bit for bit. Only where no full tensor is kept (a summary trace
written by ``parity record --summary``): the comparison's windows need full tensors and keep the host copy.
"""

from __future__ import annotations

import importlib

import numpy as np

from parity.run.frameworks import PORT_PACKAGES

__all__ = ["summarized_in_place", "device_summaries"]


def summarized_in_place(v) -> bool:
    """A torch floating-point tensor (duck-typed: ``detach``, ``device.type``, ``numel``) of more than SMALL elements."""
    from parity.trace.stages import SMALL

    if isinstance(v, (np.ndarray, np.generic)) or not callable(getattr(v, "detach", None)):
        return False
    device, numel, floating = getattr(v, "device", None), getattr(v, "numel", None), getattr(v, "is_floating_point", None)
    return (getattr(device, "type", None) is not None and callable(numel) and callable(floating) and floating()
            and numel() > SMALL)


def device_summaries(tensors: dict) -> dict:
    """``{key: torch tensor}`` -> ``{key: Summary}``, computed where each tensor lives
    (``torch_impl.trace.stats.summarize_step``: one host copy per device; a CPU tensor on a view of its memory,
    the host path's summary bit for bit)."""
    stats = importlib.import_module(f"{PORT_PACKAGES['torch']}.trace.stats")
    keys = list(tensors)
    got = stats.summarize_step({str(i): tensors[k] for i, k in enumerate(keys)})
    return {k: got[str(i)] for i, k in enumerate(keys)}
