"""GPU: a torch trace recorded on CUDA agrees with the CPU traces (skipped where there is no GPU)."""

import pytest

from parity.comparison.comparator import compare
from parity.run.runner import run_port

pytestmark = [pytest.mark.gpu, pytest.mark.torch]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_encoder_on_cuda_matches_cpu(monkeypatch, dtype):
    from parity.cases.registry import get_case

    case = get_case("seed000_encoder3_xavier")
    cpu = run_port(case, "numpy", dtype)
    monkeypatch.setenv("PARITY_TORCH_DEVICE", "cuda")
    gpu = run_port(case, "torch", dtype)
    assert "cuda" in gpu.manifest["device"]
    # TF32 is off in torch_impl (PITFALLS P45), so the float32 error model applies unchanged.
    result = compare(cpu, gpu, cost=case.cost)
    assert result.ok, result.first_divergence
