"""``make bench``'s device-statistics figure: one real-size step's summaries computed where the tensors live
(:mod:`torch_impl.trace.stats`, one host copy a step) against copying every tensor to the host and summarizing
there (:func:`parity.trace.summary.summarize`), side by side in one fresh interpreter (torch is imported
there, not here: ``parity/`` names no port package). Measured on the 2-core CPU machine (``device="cpu"``,
2M elements): the torch path 4.4x the host path's time there, which is why CPU tensors keep the host path;
the figure that matters is CUDA's, where the host path pays a device-to-host copy of every tensor.
"""

from __future__ import annotations

import json
import os
import subprocess

from parity.run.interpreter import python

__all__ = ["stats_timing", "cuda_available"]


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device (imports torch: only the bench asks)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    from parity.run.frameworks import port_package

    return port_package("torch").cuda_available()


_STATS_SNIPPET = "from torch_impl.trace.timing import main; main()"  # torch stays out of parity/


def stats_timing(device: str = "cuda", *, elements: int = 25_000_000, repeats: int = 3) -> dict | None:
    """One real-size step's summaries (320 float32 tensors, ``elements`` in all) computed on ``device``
    (:mod:`torch_impl.trace.stats`, one host copy) against the host path (every tensor copied, then
    summarized), alternating, fastest of ``repeats``; None where torch sees no such device."""
    if device.startswith("cuda") and not cuda_available():
        return None
    proc = subprocess.run(python(_STATS_SNIPPET, device, elements, repeats), capture_output=True, text=True,
                          env=dict(os.environ))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["(no output)"])[-1]}
    return json.loads(lines[-1])
