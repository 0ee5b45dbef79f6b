"""The real-size transformer (Keras vs torch) and the heavy tiers of the catalogue.

The real-size case itself runs in the slow tier; here a small transformer of the same
code (2 layers, d 32) checks the ports' weight mapping and conventions in seconds.
"""

import numpy as np
import pytest

from parity.cases.case import HEAVY_TAGS
from parity.cases.registry import all_cases, default_cases, get_case
from parity.cases.catalog import full, realsize
from parity.run.runner import run_case
from parity.comparison.tolerance import FLOAT64_SEMANTIC

# head_dim 16: Keras rounds the attention scale 1/sqrt(head_dim) to float32, exact only for
# powers of 4 (tf_impl/v2/transformer.py), so a float64 check needs one.
SMALL = realsize.transformer_case(
    "realsize_transformer_small", "2-layer transformer, d 32", vocab=64, seq=8, d_model=32, heads=2, ff=48,
    layers=2, batch=4, steps=3, tags=(),
)


@pytest.mark.torch
def test_torch_port_loads_and_reports_the_canonical_layout_exactly():
    from parity.cases.params import draw_parameters
    from torch_impl import transformer

    params = draw_parameters(SMALL, "float64")
    port = transformer.build(SMALL, "float64")
    port.load(params)
    back = port.parameters()
    assert set(back) == set(params)
    for name, value in params.items():
        # in_proj_weight thirds, out_proj and Linear transposes are permutations: exact.
        np.testing.assert_array_equal(back[name], value, err_msg=name)


@pytest.mark.tf
@pytest.mark.torch
def test_small_transformer_keras_and_torch_agree():
    result = run_case(SMALL)
    assert result.passed, [c.first_divergence.describe() for c in result.comparisons if not c.ok]
    for c in result.comparisons:
        if c.dtype == "float64":
            # Measured 1.8e-15 (3 and 5 steps): the two ports compute the same maths; the
            # float64 semantic threshold (1e-10) separates it from any convention slip.
            assert c.worst_rel() <= FLOAT64_SEMANTIC, c.first_divergence
    settings = {p: t.manifest["settings"] for p, t in result.traces["float64"].items()}
    assert settings["tf2"]["weight_decay_excluded"] == settings["torch"]["weight_decay_excluded"]
    assert settings["torch"]["weight_decay_excluded"]  # the LayerNorm gains and the head's bias


def test_realsize_case_is_the_declared_size():
    case = get_case("realsize_transformer")
    n = sum(int(np.prod(spec.shape)) for spec in case.params.values())
    assert n == 5_262_340  # 5.26 M parameters, as the title says
    assert case.steps == 100 and case.tier == "realsize" and {"slow", "realsize"} <= set(case.tags)
    assert case.data.args["batch"] == 16 and case.option("layers") == 4 and case.option("d_model") == 256


def test_heavy_tiers_are_left_out_of_run_all():
    names = {c.name for c in default_cases()}
    heavy = [c for c in all_cases() if set(HEAVY_TAGS) & set(c.tags)]
    assert heavy and not names & {c.name for c in heavy}
    assert {c.name for c in all_cases("full")} == {c.name for c in full.FULL_CASES}
    assert [c.name for c in all_cases("realsize")] == ["realsize_transformer"]


def test_full_tier_is_the_seeds_own_sizes():
    by = {c.name: c for c in full.FULL_CASES}
    conv = by["seed001_convnet_seed_size"]
    assert conv.data.args["batch"] == 128 and conv.params["wd1"].shape == (7 * 7 * 64, 1024) and conv.steps == 50
    assert by["seed000_encoder3_tiny_seed_size"].steps == 10000
    assert by["seed002_max_norm_seed_size"].steps == 500 and by["seed002_max_norm_seed_size"].data.args["batch"] == 50
    assert by["seed003_fit_vs_step_seed_size"].data.args["batch"] == 128
    for c in full.FULL_CASES:
        # Only their own tier's tags: the per-seed tests iterate all_cases("seed00N") at the small sizes.
        assert not any(t.startswith("seed") for t in c.tags), c.name
        assert c.tier == "full" and c.expect == "match"


@pytest.mark.parametrize("short", ["seed000_encoder2_tiny", "seed000_encoder3_tiny", "seed000_encoder2_xavier",
                                   "seed000_encoder3_xavier", "seed002_clip_value", "seed002_clip_value_bites",
                                   "seed002_max_norm", "seed002_global_norm"])
def test_shortened_cases_are_the_first_steps_of_their_full_tier_case(short):
    # make parity runs these for their first steps only (issue 21: its time); the steps after are make parity-full's,
    # so the two must stay the same run: weights, options, data and seed, only the length differs
    import itertools

    from parity.cases.data import iter_batches

    case, long = get_case(short), get_case(short + full.SUFFIX)
    assert case.steps < long.steps
    assert (case.params, case.options, case.data, case.seed, case.module) == (long.params, long.options, long.data,
                                                                             long.seed, long.module)
    assert set(long.ports) <= set(case.ports)
    n = 0
    for a, b in zip(iter_batches(case), itertools.islice(iter_batches(long), case.steps)):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), n
        n += 1
    assert n == case.steps


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
def test_realsize_transformer_trains_the_same_in_keras_and_torch():
    # The real-size case, streamed and in summary mode (what `make parity-full` runs):
    # ~5 minutes on 2 cores. float64 must agree to the semantic threshold over the 100 steps.
    case = get_case("realsize_transformer")
    result = run_case(case, summary=True)
    assert result.passed, [c.first_divergence.describe() for c in result.comparisons if not c.ok]
    for c in result.comparisons:
        if c.dtype == "float64":
            assert c.worst_rel() <= FLOAT64_SEMANTIC, c.first_divergence
    losses = [float(s["loss"]["loss"]) for s in result.traces["float64"]["torch"].steps]
    # It trains: the toy topic task goes from chance (ln 4 = 1.39) to well below it in 100 steps.
    assert losses[0] > 1.2 and losses[-1] < 0.5 * losses[0], losses[::10]
