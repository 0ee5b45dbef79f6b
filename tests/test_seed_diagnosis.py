"""The seed cases' deliberately wrong ports are caught and the diagnosis names the right pitfall."""

import pytest

from parity.cases.registry import get_case
from parity.pitfalls.diagnose import diagnose
from parity.run.runner import run_case

pytestmark = [pytest.mark.tf, pytest.mark.torch]

EXPECTED = {
    # case: (steps run here, the pitfall named first); two steps are enough: all diverge at step 0 or 1
    "seed001_convnet_flatten_unpermuted": (2, "flatten-order"),
    "seed001_convnet_stride2_symmetric_pad": (2, "same-padding-conv"),
    "seed002_max_norm_wrong_axis": (2, "max-norm-axis"),
    "seed002_keras_sgd_momentum": (3, "sgd-momentum-lr-change"),
    "seed003_training_flag_tf2": (2, "learning-phase"),
    "seed003_eval_mode_torch": (2, "torch-eval-mode"),
    "seed003_running_var_unbiased": (2, "bn-running-var"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wrong_seed_port_is_named(name):
    steps, pitfall = EXPECTED[name]
    case = get_case(name).replace(steps=steps)
    result = run_case(case, dtypes=["float64"])
    assert result.passed  # expect="diverge": the comparison found a semantic divergence
    (cmp,) = result.comparisons
    traces = result.traces["float64"]
    named = diagnose(case, cmp, {p: traces[p] for p in (cmp.a["port"], cmp.b["port"])})
    assert named and named[0].pitfall == pitfall, [d.pitfall for d in named]


def test_tf32_behind_a_batchnorm_is_named_at_the_kernels_gradient():
    # The H200 report: TF32 on in seed 003's BN convnet was flagged but "unknown". Emulated here (torch:tf32_conv rounds
    # the conv's float32 operands to TF32): the conv output passes as float32 rounding, the kernel's gradient, through
    # the BatchNorm's backward, diverges at step 0 (measured: 0.025 relative); float64 is untouched.
    case = get_case("seed003_fit_vs_step").replace(steps=2)
    result = run_case(case, ports=["tf2", "torch:tf32_conv"], dtypes=["float64", "float32"])
    by = {c.dtype: c for c in result.comparisons}
    f64, f32 = by["float64"], by["float32"]
    assert f64.first is None and f32.first is not None
    assert (f32.first.step, f32.first.stage, f32.first.name) == (0, "gradients", "conv/kernel")
    traces = result.traces["float32"]
    named = diagnose(case, f32, {p: traces[p] for p in (f32.a["port"], f32.b["port"])})
    assert named and named[0].pitfall == "tf32-emulated", [d.pitfall for d in named]
