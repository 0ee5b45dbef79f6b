"""TF32 on a CUDA device, as the catalogue's tf32-emulated pitfall predicts it (torch only: these run on a
GPU machine that has no TensorFlow; tests/test_pitfalls.py, which needs both frameworks, is skipped there)."""

from __future__ import annotations

import numpy as np
import pytest

from parity.pitfalls.diagnose import diagnose

pytestmark = [pytest.mark.torch]


@pytest.mark.gpu
def test_tf32_on_gpu_matches_the_emulated_signature():
    """On a CUDA device, torch's TF32 matmul differs from IEEE float32 as the emulation predicts."""
    import torch

    from parity.pitfalls import round_tf32

    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(64, 256)), rng.normal(size=(256, 64))
    xt, kt = torch.tensor(x, dtype=torch.float32, device="cuda"), torch.tensor(k, dtype=torch.float32, device="cuda")
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        tf32 = (xt @ kt).cpu().double().numpy()
        torch.backends.cuda.matmul.allow_tf32 = False
        ieee = (xt @ kt).cpu().double().numpy()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    emulated = round_tf32(x.astype(np.float32)) @ round_tf32(k.astype(np.float32))
    scale = np.abs(ieee).max()
    # TF32 is ~2**-11 relative per operand: far above float32 rounding (2**-24 * sqrt(256))
    assert np.abs(tf32 - ieee).max() / scale > 1e-4
    # the hardware rounds to nearest like the emulation, accumulating in float32: same to float32 noise
    assert np.abs(tf32 - emulated).max() / scale < 1e-5


@pytest.mark.gpu
def test_tf32_conv_on_gpu_is_named_tf32():
    """A float32 conv run with cuDNN's TF32 (torch's default for convolutions) against IEEE float32:
    the diagnosis names tf32-emulated, never a normalisation epsilon (the H200 report of issue 10)."""
    import torch

    from parity.comparison.comparator import compare
    from parity.trace.memory import Trace

    rng = np.random.default_rng(0)
    x, k = rng.normal(size=(8, 16, 16, 32)).astype(np.float32), (rng.normal(size=(3, 3, 32, 32)) * 0.2).astype(np.float32)
    xt = torch.tensor(x, device="cuda").permute(0, 3, 1, 2)
    kt = torch.tensor(k, device="cuda").permute(3, 2, 0, 1)
    old = torch.backends.cudnn.allow_tf32
    try:
        outs = {}
        for flag in (False, True):
            torch.backends.cudnn.allow_tf32 = flag
            outs[flag] = torch.relu(torch.nn.functional.conv2d(xt, kt)).permute(0, 2, 3, 1).cpu().double().numpy()
    finally:
        torch.backends.cudnn.allow_tf32 = old
    traces = []
    for port, flag in (("ieee", False), ("tf32", True)):
        t = Trace(manifest={"case": "c", "port": port, "dtype": "float32", "framework": "torch"}, initial={"K": k.astype(np.float64)})
        t.add_step({"inputs": {"X": x.astype(np.float64)}, "forward": {"conv": outs[flag]}})
        traces.append(t)
    cmp = compare(*traces)
    assert not cmp.ok, "TF32 did not change the conv: is this an Ampere+ GPU?"
    named = [d.pitfall for d in diagnose(None, cmp, traces)]
    assert named[:1] == ["tf32-emulated"], named
