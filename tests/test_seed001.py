"""Seed 001, the MNIST convnet: TF1, TF2 and PyTorch step by step, and its pitfalls.

The runs here are short versions of the catalog cases (batch 4, a few steps): the same
network, init and optimizer, so every code path of the ports is exercised in seconds.
"""

import numpy as np
import pytest

from parity.cases.catalog.seed001 import KEEP_PROB, SUMMARY_IN_LOOP, convnet_case
from parity.comparison.comparator import compare
from parity.errors import PortError
from parity.run.runner import run_case, run_port
from parity.comparison.tolerance import FLOAT64_SEMANTIC

pytestmark = [pytest.mark.tf, pytest.mark.torch]

STEPS = 3
BATCH = 4
CONV_LAYERS = ("conv1", "pool1", "conv2", "pool2")
AFTER_FLATTEN = ("fc1", "fc1_drop", "logits")


def _short(name, **kw):
    return convnet_case(f"test_{name}", "test", steps=kw.pop("steps", STEPS), batch=BATCH, **kw)


@pytest.fixture(scope="module")
def parity_run():
    return run_case(_short("convnet"), keep="all")  # the tests read every step


def test_all_pairs_agree_in_float64(parity_run):
    comps = [c for c in parity_run.comparisons if c.dtype == "float64"]
    assert {c.pair for c in comps} == {"tf1 vs tf2", "tf1 vs torch", "tf2 vs torch"}
    for c in comps:
        assert not c.issues, c.issues
        # Faithful float64 ports differ by rounding only: measured ~1e-14 relative here.
        assert c.worst_rel() <= FLOAT64_SEMANTIC, (c.pair, c.worst_by_stage())
        stages = {d.stage for d in c.diffs}
        assert {"forward", "loss", "gradients", "learning_rate", "parameters", "slots"} <= stages


def test_all_pairs_agree_in_float32_within_the_error_model(parity_run):
    comps = [c for c in parity_run.comparisons if c.dtype == "float32"]
    assert len(comps) == 3
    for c in comps:
        assert c.ok, (c.pair, c.first_divergence.describe() if c.first_divergence else c.issues)


def test_traces_carry_every_trainable_variable_and_adam_slots(parity_run):
    case = parity_run.case
    for port, trace in parity_run.traces["float64"].items():
        step = trace.steps[-1]
        assert set(step["gradients"]) == set(case.trainable), port
        assert set(step["parameters"]) == set(case.trainable), port
        slots = set(step["slots"])
        assert {f"{n}/{s}" for n in case.trainable for s in "mv"} | {"beta1_power", "beta2_power"} == slots
        # STEPS+1 float64 multiplications vs one pow: a few tens of ulps at most
        np.testing.assert_allclose(step["slots"]["beta1_power"], 0.9 ** (STEPS + 1), rtol=1e-14)
        assert step["forward"]["conv1"].shape == (BATCH, 28, 28, 32)  # NHWC
        assert step["forward"]["pool2"].shape == (BATCH, 7, 7, 64)


def test_masks_are_applied_as_inverted_dropout(parity_run):
    trace = parity_run.traces["float64"]["torch"]
    step = trace.steps[0]
    mask = step["inputs"]["keep_mask"]
    fc1, dropped = step["forward"]["fc1"], step["forward"]["fc1_drop"]
    # a multiply and a divide, possibly in another order: <= 2 ulp
    np.testing.assert_allclose(dropped, fc1 * mask / KEEP_PROB, rtol=1e-15)


def test_unpermuted_flatten_diverges_first_at_the_dense_layer_after_flatten():
    case = _short("flatten", ports=("tf1", "torch:no_flatten_perm"), steps=1)
    tf1 = run_port(case, "tf1", "float64")
    wrong = run_port(case, "torch:no_flatten_perm", "float64")
    right = run_port(case, "torch", "float64")
    good = compare(tf1, right, cost=case.cost)
    # With the permuted kernel the torch forward is TF's to rounding, layer by layer.
    assert max(d.max_rel for d in good.diffs if d.stage == "forward") <= FLOAT64_SEMANTIC
    bad = compare(tf1, wrong, cost=case.cost)
    first = bad.first_divergence
    assert (first.step, first.stage) == (0, "forward")
    forward = {d.name: d for d in bad.diffs if d.stage == "forward" and d.step == 0}
    for name in CONV_LAYERS:  # everything before the flatten still matches
        assert forward[name].max_rel <= FLOAT64_SEMANTIC, name
    # The first layer after the flatten is where it breaks, by O(1) of its scale.
    assert forward["fc1"].verdict == "semantic" and forward["fc1"].max_rel > 1e-2
    assert first.name in AFTER_FLATTEN


def test_stride2_even_input_pads_like_tf_in_every_port():
    case = _short("stride2", stride=2, steps=2)
    assert case.params["wd1"].shape[0] == 4 * 4 * 64  # 28 -> 14 -> 7 -> 4 (SAME pools)
    result = run_case(case, dtypes=("float64",))
    for c in result.comparisons:
        assert c.worst_rel() <= FLOAT64_SEMANTIC, (c.pair, c.worst_by_stage())


def test_symmetric_padding_is_caught_at_the_strided_conv():
    case = _short("stride2_sym", stride=2, steps=1, ports=("tf1", "torch:symmetric_pad"))
    result = run_case(case, dtypes=("float64",))
    (comp,) = result.comparisons
    first = comp.first_divergence
    assert (first.step, first.stage) == (0, "forward")
    conv1 = next(d for d in comp.diffs if d.stage == "forward" and d.name == "conv1")
    # k5 s2 on 28: TF pads (1, 2), padding=2 pads (2, 2): same shape, shifted sampling grid.
    assert conv1.verdict == "semantic" and conv1.max_rel > 1e-2


def test_summary_op_in_the_training_loop_is_refused():
    case = SUMMARY_IN_LOOP.replace(steps=2)
    with pytest.raises(PortError, match="creates ops inside its training loop") as info:
        run_port(case, "tf1:summary_in_loop", "float32")
    assert info.value.phase == "step 0" and info.value.exc_type == "RuntimeError"
    result = run_case(case, dtypes=("float32",))
    assert result.passed  # expect="error": the refusal is the expected outcome


# -- each framework's own dropout, statistically ---------------------------------------

N_DROP = 200_000


def _dropout_check(x, y, keep_prob):
    """Return (zero-fraction z-score, max relative error of kept values vs x / keep_prob)."""
    zeros = np.mean(y == 0)
    # Binomial: the zero fraction of n independent units has std sqrt(p (1 - p) / n).
    z = (zeros - (1 - keep_prob)) / np.sqrt(keep_prob * (1 - keep_prob) / y.size)
    kept = y != 0
    scale_err = np.max(np.abs(y[kept] - x[kept] / keep_prob) / np.abs(x[kept] / keep_prob))
    return z, scale_err


def _native(framework):
    if framework == "tf1":
        from tf_impl.v1.convnet import native_dropout
    elif framework == "tf2":
        from tf_impl.v2.convnet import native_dropout
    else:
        from torch_impl.convnet import native_dropout
    return native_dropout


@pytest.mark.parametrize("framework", ["tf1", "tf2", "torch"])
def test_native_dropout_keeps_keep_prob_and_scales_by_its_inverse(framework):
    x = np.random.default_rng(3).uniform(0.5, 1.5, size=N_DROP)  # no zeros in the input
    y = _native(framework)(x, KEEP_PROB)
    z, scale_err = _dropout_check(x, y, KEEP_PROB)
    # 5 sigma: a faithful dropout fails once in ~1.7 million runs.
    assert abs(z) < 5, z
    # Kept values are x * (1/keep_prob) or x / keep_prob: equal up to two roundings.
    assert scale_err <= 2 * np.finfo(np.float64).eps, scale_err


def test_keep_prob_passed_as_p_is_caught():
    x = np.random.default_rng(4).uniform(0.5, 1.5, size=N_DROP)
    from torch_impl.mistakes.convnet import native_dropout_keep_prob_as_p

    y = native_dropout_keep_prob_as_p(x, KEEP_PROB)
    z, scale_err = _dropout_check(x, y, KEEP_PROB)
    # nn.Dropout(p=0.75) drops 75% and scales by 4: hundreds of sigmas off, and 3x the scale.
    assert abs(z) > 100
    assert scale_err > 1.0


def test_torch_adam_epsilon_placement_is_a_semantic_difference():
    # torch's own eps placement (added to the bias-corrected sqrt) vs TF1's epsilon-hat:
    # the slots m, v agree, the update does not (PITFALLS P09's signature).
    case = _short("torch_eps", steps=2, ports=("tf1", "torch:torch_eps"))
    result = run_case(case, dtypes=("float64",))
    (comp,) = result.comparisons
    first = comp.first_divergence
    assert first is not None and first.stage == "parameters", first
    slots_m_v = [d for d in comp.diffs if d.stage == "slots" and d.step == 0 and d.name.endswith(("/m", "/v"))]
    assert max(d.max_rel for d in slots_m_v) <= FLOAT64_SEMANTIC
