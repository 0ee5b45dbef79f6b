"""GPU: summaries computed on the device (torch_impl.trace.stats) give the host path's summary, and cost less
than copying every tensor to the host first (torch only: skipped without CUDA, runs without TensorFlow)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from parity.trace.summary import summarize

pytestmark = [pytest.mark.gpu, pytest.mark.torch]

U = 2.0**-53


def test_device_summaries_match_the_host_path_on_cuda():
    import torch

    from torch_impl.trace.stats import summarize_step

    g = torch.Generator(device="cuda").manual_seed(0)
    step = {f"t{i}": torch.randn(1000 + 37 * i, generator=g, device="cuda") * (i + 1) for i in range(20)}
    step["f64"] = torch.randn(4097, generator=g, device="cuda", dtype=torch.float64)
    got = summarize_step(step)  # off the CPU: the device path by default
    for name, x in step.items():
        arr = x.cpu().numpy()
        want, s = summarize(arr), got[name]
        assert s.checksum < 0  # computed on the device
        assert np.array_equal(s.stats[1:3], want.stats[1:3]) and np.array_equal(s.samples, want.samples), name
        n = arr.size
        # two float64 sums of the same terms in other orders: at most 2 n u of the sum of magnitudes apart
        assert abs(s.stats[0] - want.stats[0]) <= 2 * n * U * want.stats[0], name
        assert abs(s.stats[3] - want.stats[3]) <= 2 * n * U * float(np.abs(arr.astype(np.float64)).mean()), name


def test_device_summaries_cost_less_than_the_host_copy():
    """The real-size transformer's float32 step in shape (320 tensors, 103 MB): the device path must not be
    slower than copying each tensor to the host and summarizing there, which does strictly more work."""
    import torch

    from torch_impl.trace.stats import summarize_step

    g = torch.Generator(device="cuda").manual_seed(0)
    step = {f"t{i}": torch.randn(80_000, generator=g, device="cuda") for i in range(320)}
    best = {}
    for _ in range(3):
        for name, fn in (("host", lambda: {k: summarize(v.cpu().numpy()) for k, v in step.items()}),
                         ("device", lambda: summarize_step(step))):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best[name] = min(best.get(name, 1e9), time.perf_counter() - t0)
    print(f"device {best['device'] * 1e3:.1f} ms, host {best['host'] * 1e3:.1f} ms")
    assert best["device"] <= best["host"], best
