"""The device-statistics timing of ``make bench`` (parity/tools/benchstats.py runs it in a fresh
interpreter): one real-size step's summaries computed on the device (:mod:`.stats`) against the host path.

``python -c "from torch_impl.trace.timing import main; main()" DEVICE ELEMENTS REPEATS`` prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from parity.trace.summary import summarize

from .. import torch as _torch
from .stats import summarize_step


def main() -> None:
    torch = _torch()
    dev, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    g = torch.Generator(device=dev).manual_seed(0)
    # the real-size transformer's float32 step, in shape: 320 tensors, 103 MB in all
    sizes = [n // 320] * 320
    step = {f"t{i}": torch.randn(k, generator=g, device=dev) for i, k in enumerate(sizes)}

    def host():
        return {k: summarize(v.cpu().numpy()) for k, v in step.items()}

    def device():
        return summarize_step(step, on_device=True)

    best: dict = {}
    for _ in range(repeats):
        for name, fn in (("host", host), ("device", device)):
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if dev.startswith("cuda"):
                torch.cuda.synchronize()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
    print(json.dumps({"device": dev, "elements": n, "tensors": len(sizes), "host_s": best["host"],
                      "device_s": best["device"], "ratio": best["device"] / best["host"]}))
