"""Seed 002: the 784-300-100-10 MLP with clipping, momentum on a polynomial decay, and max-norm.

The fast tests run shortened copies of the registered cases (a decay over 8 steps inside
a 12-step run, so the end rate and the clamp after ``decay_steps`` are still exercised);
the registered 25- and 50-step cases run in the slow tier.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity.portkit import transforms as T
from parity.cases.registry import all_cases
from parity.cases.catalog import seed002 as S
from parity.run.runner import run_case, run_port
from parity.comparison.tolerance import EPS, FLOAT64_SEMANTIC

MATCH_PORTS = ("tf1", "tf2", "torch", "numpy")
FRAMEWORKS = ("tf1", "tf2", "torch")

# A 12-step copy of the short-decay case: decay over 8 steps, so steps 8..11 run at the end rate.
SHORT = S.MAX_NORM_SHORT_DECAY.replace(steps=12, options={"decay_steps": 8})


@pytest.fixture(scope="module")
def short_run():
    # Each port against TF1 (the reference): agreement is transitive within the bounds, and
    # the all-pairs comparison doubles the cost of the fixture.
    return run_case(SHORT, pairs="reference", keep="all")


# -- numpy only -------------------------------------------------------------------------------------


def test_polynomial_decay_closed_form():
    # tf.compat.v1.train.polynomial_decay (PITFALLS P15): (lr - end) (1 - min(s, D)/D)^p + end.
    lr = [T.polynomial_decay(0.01, s, 40, 0.001, 0.9) for s in range(50)]
    # float64 closed form evaluated two ways: a few ulps (1e-15 is ~5 ulp)
    assert lr[0] == pytest.approx(0.01, rel=1e-15)
    assert all(a > b for a, b in zip(lr[:40], lr[1:41]))
    assert lr[40:] == [0.001] * 10  # the clamp: no further decay, no cycle
    assert lr[20] == pytest.approx(0.009 * 0.5**0.9 + 0.001, rel=1e-15)


def test_seed_max_norm_is_per_input_row():
    # clip_by_norm(kernel, r, axes=1) on [in, out]: each row (one input unit's outgoing weights).
    w = np.array([[3.0, 4.0], [0.3, 0.4]])
    out = T.max_norm(w, 1.0, axes=1)
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.3, 0.4]], rtol=1e-15)  # sqrt + divide: <= 2 ulp


# -- one framework at a time ---------------------------------------------------------------------------


@pytest.mark.torch
def test_torch_renorm_dim_is_the_kept_dimension():
    import torch

    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.1, size=(30, 20))  # [in, out]; row norms ~0.45, some above 0.5
    want = T.max_norm(kernel, 0.5, axes=1)
    weight = torch.from_numpy(kernel.T.copy())  # torch [out, in]
    right = torch.renorm(weight, 2, 1, 0.5).numpy().T
    wrong = torch.renorm(weight, 2, 0, 0.5).numpy().T
    # renorm divides by norm + 1e-7: 1e-7/norm relative (norm ~0.5), nothing else.
    np.testing.assert_allclose(right, want, rtol=1e-7 / 0.5 * 1.01, atol=0)
    assert np.max(np.abs(right - want) / np.max(np.abs(want))) > FLOAT64_SEMANTIC  # the epsilon shows in float64
    assert np.max(np.abs(wrong - want)) > 1e-2


# -- cross-framework -------------------------------------------------------------------------------------

@pytest.mark.tf
@pytest.mark.torch
def test_learning_rates_equal_closed_form(short_run):
    o = SHORT.option
    want = np.array([T.polynomial_decay(o("lr"), s, o("decay_steps"), o("end_lr"), o("power")) for s in range(SHORT.steps)])
    assert want[-1] == o("end_lr") and want[8] == o("end_lr")
    for dtype, traces in short_run.traces.items():
        for port in MATCH_PORTS:
            got = np.array([float(s["learning_rate"]["lr"]) for s in traces[port].steps])
            if dtype == "float64":
                # TF and numpy evaluate the same formula in float64 (exact here); torch's
                # LambdaLR returns lr0 * (decayed / lr0): one more rounding, <= 2 ulp.
                np.testing.assert_array_less(np.abs(got - want), 2 * np.spacing(want) + 1e-300)
            else:
                # float32: a power and four arithmetic roundings in float32, <= 8 eps32.
                np.testing.assert_allclose(got, want, rtol=8 * EPS["float32"], atol=0)


@pytest.mark.tf
@pytest.mark.torch
def test_max_norm_rows_within_radius_after_every_step(short_run):
    radius = SHORT.option("max_norm")
    for dtype, traces in short_run.traces.items():
        eps = EPS[dtype]
        for port in MATCH_PORTS:
            clipped_rows = 0
            for step in traces[port].steps:
                for name, kernel in step["constrained"].items():
                    k = kernel.shape[1]
                    before = np.sqrt((step["parameters"][name].astype(np.float64) ** 2).sum(axis=1))
                    after = np.sqrt((kernel.astype(np.float64) ** 2).sum(axis=1))
                    # w * r / ||w|| has norm r (1 + d), |d| <= (k + 2) eps: the k-term sum of
                    # squares, the sqrt and the division, each rounded once in the port's dtype.
                    assert after.max() <= radius * (1 + (k + 2) * eps), (port, dtype, name)
                    clipped_rows += int((before > radius).sum())
                    # rows under the radius are left as they were: clip_by_norm computes
                    # (w * r) / r there, two roundings, so |change| <= 2 eps |w|.
                    keep = before < radius * (1 - (k + 2) * eps)
                    w = step["parameters"][name][keep].astype(np.float64)
                    assert np.all(np.abs(kernel[keep] - w) <= 2 * eps * np.abs(w)), (port, dtype, name)
            assert clipped_rows > 0, f"{port}: the max-norm never bit; the test would prove nothing"


@pytest.mark.tf
@pytest.mark.torch
def test_short_decay_ports_agree(short_run):
    assert short_run.passed, [c.first_divergence.describe() for c in short_run.comparisons if not c.ok]
    for c in short_run.comparisons:
        if c.dtype == "float64":
            assert c.worst_rel() <= FLOAT64_SEMANTIC, c.pair
        else:
            assert c.ok, (c.pair, c.first_divergence)


@pytest.mark.tf
@pytest.mark.torch
def test_momentum_slot_is_the_gradient_at_the_first_step(short_run):
    # TF1 accum = 0.9 * 0 + g; torch's first step sets buf = g: both equal the gradient exactly.
    for dtype, traces in short_run.traces.items():
        for port in MATCH_PORTS:
            first = traces[port].steps[0]
            for name, g in first["gradients"].items():
                np.testing.assert_array_equal(first["slots"][f"{name}/momentum"], g, err_msg=f"{port} {dtype} {name}")
            counts = [int(s["state"]["global_step"]) for s in traces[port].steps]
            assert counts == list(range(1, SHORT.steps + 1)), port


@pytest.mark.tf
@pytest.mark.torch
def test_clip_by_value_parity():
    case = S.CLIP_VALUE_BITES.replace(steps=5)
    result = run_case(case, keep="all")
    assert result.passed, [c.first_divergence.describe() for c in result.comparisons if not c.ok]
    c = case.option("clip_value")
    for dtype, traces in result.traces.items():
        for port, trace in traces.items():
            step = trace.steps[0]
            raw, cut = step["gradients"], step["processed_gradients"]
            assert sum(int((np.abs(g) > c).sum()) for g in raw.values()) > 0  # the clip bites
            for name in raw:
                np.testing.assert_array_equal(cut[name], np.clip(raw[name], -c, c), err_msg=f"{port} {dtype}")


@pytest.mark.tf
@pytest.mark.torch
def test_global_norm_parity_and_torch_epsilon():
    case = S.GLOBAL_NORM.replace(steps=5, ports=MATCH_PORTS + ("torch:clip_grad_norm",))
    clip = case.option("clip_norm")
    traces = {p: run_port(case, p, "float64") for p in case.ports}
    for port in MATCH_PORTS:
        for step in traces[port].steps:
            norm = float(step["processed_gradients"]["global_norm"])
            # a sum of ~266k squares in another order: sqrt(n) eps ~ 1e-13 relative at most
            assert norm == pytest.approx(T.global_norm(step["gradients"].values()), rel=1e-13)
            assert norm > clip  # the clip bites at every step
    ref = traces["numpy"]
    for port in MATCH_PORTS:
        for sa, sb in zip(ref.steps, traces[port].steps):
            for name, g in sa["processed_gradients"].items():
                err = np.max(np.abs(sb["processed_gradients"][name] - g)) / np.max(np.abs(g))
                assert err <= FLOAT64_SEMANTIC, (port, name, err)
    # clip_grad_norm_ scales by c / (norm + 1e-6): the processed gradients are 1e-6/norm
    # smaller at step 0 (identical inputs), ~3e-7 here: far above the float64 threshold.
    a, b = traces["torch"].steps[0], traces["torch:clip_grad_norm"].steps[0]
    norm = float(a["processed_gradients"]["global_norm"])
    for name in (n for n in a["processed_gradients"] if n != "global_norm"):
        ga, gb = a["processed_gradients"][name], b["processed_gradients"][name]
        ratio = gb[ga != 0] / ga[ga != 0]
        np.testing.assert_allclose(1 - ratio, 1e-6 / norm, rtol=1e-6)  # the ratio is exact to 1e-6 of itself


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_checkpoint_continuation_is_exact(framework):
    # Save after 6 steps (Saver / tf.train.Checkpoint / torch.save of the state_dicts), restore
    # into a fresh port, run 6 more: the trace equals the uninterrupted 12-step run bit for bit.
    case = SHORT.replace(options={"resume_at": 6})
    for dtype in ("float64", "float32"):
        plain = run_port(case, framework, dtype)
        resumed = run_port(case, f"{framework}:resume", dtype)
        for i, (sa, sb) in enumerate(zip(plain.steps, resumed.steps)):
            assert sa.keys() == sb.keys()
            for stage in sa:
                for name in sa[stage]:
                    np.testing.assert_array_equal(sb[stage][name], sa[stage][name], err_msg=f"{dtype} step {i} {stage} {name}")


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_restore_restores_everything(framework):
    # The continuation test could pass vacuously if nothing were saved and the fresh port
    # happened to start from the same state; check that a restored port carries the state.
    import importlib
    import tempfile

    from parity.cases.params import draw_parameters

    mod = importlib.import_module({"tf1": "tf_impl.v1.mlp", "tf2": "tf_impl.v2.mlp", "torch": "torch_impl.mlp"}[framework])
    case = SHORT.replace(steps=2)
    port = mod.build(case, "float64")
    port.load(draw_parameters(case, "float64"))
    from parity.cases.data import batches

    for batch in batches(case, "float64"):
        last = port.step(batch)
    with tempfile.TemporaryDirectory() as tmp:
        path = mod.save(port, tmp)
        fresh = mod.build(case, "float64")
        restored = mod.restore(case, "float64", path)
    want = port.parameters()
    got, untouched = restored.parameters(), fresh.parameters()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    assert any(not np.array_equal(untouched[n], want[n]) for n in want)
    nxt = batches(case.replace(steps=3), "float64")[2]
    out = restored.step(nxt)
    assert int(out["state"]["global_step"]) == 3
    assert float(out["learning_rate"]["lr"]) < float(last["learning_rate"]["lr"])
    for p in (port, fresh, restored):
        p.close()


@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in all_cases("seed002") if c.expect == "diverge"], ids=lambda c: c.name)
def test_deliberate_differences_are_found(case):
    result = run_case(case)
    assert result.passed, f"{case.name}: the comparison did not find the planted difference"


@pytest.mark.tf
def test_tf1_losses_cast_is_harmless_in_float32():
    # The float32 cast inside tf.losses is a no-op in a float32 graph: identical traces.
    case = S.TF1_LOSSES_CAST.replace(dtypes=("float32",), expect="match")
    result = run_case(case)
    assert all(c.verdict == "exact" for c in result.comparisons)


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("case", [c for c in all_cases("seed002") if c.expect == "match"], ids=lambda c: c.name)
def test_registered_cases_match(case):
    # Against the TF1 reference only: the all-pairs comparison of 25-50 steps of 784x300
    # tensors doubles the run time (measured 45-75 s per case with all pairs, loaded machine).
    result = run_case(case, pairs="reference")
    assert result.passed, [c.first_divergence.describe() for c in result.comparisons if not c.ok]
    for c in result.comparisons:
        if c.dtype == "float64":
            assert c.worst_rel() <= FLOAT64_SEMANTIC, c.pair
