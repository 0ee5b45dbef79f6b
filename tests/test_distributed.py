"""Data parallelism (issue 14): MirroredStrategy and DDP against one device, and the pitfalls of going wide.

* The signatures (numpy only, synthetic traces): each names its mistake from the two traces
  and stays silent on a faithful pair and on a factor that is not the number of replicas.
* The single-device reference: the replicas' shares add up to the one-device gradient of
  seed 002 (its own torch port), so the reference is the seed's maths.
* One DDP run (2 gloo processes, 2 steps) against the single device.
* Slow: the registered cases as ``parity run --tag distributed`` runs them (TF in its own
  process), both dtypes, and every wrong port caught at its step and stage and named first.
"""

from __future__ import annotations

import numpy as np
import pytest

from parity.comparison.comparator import compare
from parity.pitfalls.diagnose import diagnose
from parity.pitfalls.distributed import world_size
from parity.comparison.tolerance import FLOAT64_SEMANTIC
from parity.trace.memory import Trace

WORLD = 2


# -- synthetic traces: the signatures alone ------------------------------------------------------------
def _grads(rng):
    return {"w": rng.normal(size=(6, 3)), "b": rng.normal(size=3)}


def _trace(port, *, loss=1.0, grad=1.0, lr=0.01, forward=None, world=WORLD, dtype="float64", noise=0.0):
    """One step of a data-parallel trace: each replica's loss and gradient share, the reduced ones.

    ``noise``: relative rounding on every gradient element (a float32 run's), drawn per port.
    """
    rng = np.random.default_rng(0)
    shares = [_grads(rng) for _ in range(world)]
    params = _grads(rng)
    jitter = np.random.default_rng(len(port))
    shares = [{k: v * (1 + noise * jitter.standard_normal(v.shape)) for k, v in s.items()} for s in shares]
    t = Trace(manifest={"case": "synthetic", "port": port, "dtype": dtype})
    t.initial = {k: v.copy() for k, v in params.items()}
    losses = [0.4 + 0.1 * r for r in range(world)]
    reduced = {k: grad * sum(s[k] for s in shares) for k in params}
    step = {
        "inputs": {"x": np.arange(8.0 * 4).reshape(8, 4)},
        "loss": {"loss": np.asarray(loss * sum(losses)),
                 **{f"replica{r}/loss": np.asarray(loss * losses[r]) for r in range(world)}},
        "gradients": {**reduced, **{f"replica{r}/{k}": grad * v for r, s in enumerate(shares) for k, v in s.items()}},
        "learning_rate": {"lr": np.asarray(lr)},
        "parameters": {k: params[k] - lr * reduced[k] for k in params},
    }
    if forward is not None:
        step["forward"] = forward
    t.add_step(step)
    return t


def _named(a, b):
    cmp = compare(a, b)
    return cmp, [d.pitfall for d in diagnose(None, cmp, {a.port: a, b.port: b})]


def test_world_size_is_read_from_the_replica_losses():
    assert world_size(_trace("a")) == 2 and world_size(_trace("a", world=4)) == 4


@pytest.mark.parametrize(
    "change, stage, pitfall",
    [
        (dict(loss=2.0, grad=2.0), "loss", "replica-loss-average"),  # TF: plain mean, SUM all-reduce
        (dict(loss=0.5, grad=0.5), "loss", "replica-loss-average"),  # torch: sum / global batch, DDP mean
        (dict(grad=2.0), "gradients", "allreduce-sum"),
        (dict(lr=0.02), "learning_rate", "lr-world-size"),
    ],
)
def test_factor_of_the_world_size_is_named(change, stage, pitfall):
    cmp, named = _named(_trace("ref"), _trace("port", **change))
    assert cmp.first_divergence.stage == stage and cmp.first_divergence.step == 0
    assert named[:1] == [pitfall], named


def test_factor_is_found_through_float32_rounding():
    # 1e-6 relative per element (a few float32 roundings): elementwise ratios of the smallest
    # entries scatter, the factor of the tensor as a whole does not
    a = _trace("ref", dtype="float32", noise=1e-6)
    b = _trace("port", dtype="float32", noise=1e-6, grad=2.0)
    b.steps[0]["gradients"]["b"][0] = 1e-9  # a tiny entry whose ratio is meaningless
    a.steps[0]["gradients"]["b"][0] = 3e-9
    _, named = _named(a, b)
    assert named[:1] == ["allreduce-sum"], named


@pytest.mark.parametrize("change", [dict(grad=3.0), dict(lr=0.03), dict(loss=3.0, grad=3.0)])
def test_a_factor_that_is_not_the_world_size_is_not_blamed_on_it(change):
    _, named = _named(_trace("ref"), _trace("port", **change))
    assert not {"allreduce-sum", "lr-world-size", "replica-loss-average"} & set(named), named


def test_faithful_pair_is_clean():
    cmp, named = _named(_trace("ref"), _trace("port"))
    assert cmp.ok and named == []


def _bn_forward(local: bool, world: int = WORLD):
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(8, 5, 5, 4))
    x[4:] += 1.5  # the second replica's rows have another mean: global and per-shard moments differ
    conv = x.copy()
    if local:
        n = x.shape[0] // world
        y = np.concatenate([(s - s.mean((0, 1, 2))) / np.sqrt(s.var((0, 1, 2)) + 1e-3)
                            for s in (x[r * n:(r + 1) * n] for r in range(world))])
    else:
        y = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-3)
    return {"conv": conv, "bn": y}


@pytest.mark.parametrize("wrong_side", ["b", "a"])
def test_per_replica_batchnorm_is_named(wrong_side):
    a = _trace("ref", forward=_bn_forward(local=wrong_side == "a"))
    b = _trace("port", forward=_bn_forward(local=wrong_side == "b"))
    cmp, named = _named(a, b)
    assert (cmp.first_divergence.stage, cmp.first_divergence.name) == ("forward", "bn")
    assert named[:1] == ["replica-batchnorm"], named


def _dropout_forward(same: bool, keep: float = 0.75):
    rng = np.random.default_rng(2)
    flat = np.abs(rng.normal(size=(8, 64))) + 0.1
    mask = (rng.uniform(size=(8, 64)) < keep).astype(float)
    if same:
        mask[4:] = mask[:4]
    return {"flatten": flat, "dropout": flat * mask / keep}


def test_identical_dropout_masks_are_named():
    cmp, named = _named(_trace("ref", forward=_dropout_forward(False)), _trace("port", forward=_dropout_forward(True)))
    assert (cmp.first_divergence.stage, cmp.first_divergence.name) == ("forward", "dropout")
    assert named[:1] == ["replica-dropout-masks"], named


def test_single_device_traces_are_not_offered_the_distributed_pitfalls():
    a, b = _trace("ref"), _trace("port", grad=2.0)
    for t in (a, b):
        for stage in ("loss", "gradients"):
            t.steps[0][stage] = {k: v for k, v in t.steps[0][stage].items() if not k.startswith("replica")}
    _, named = _named(a, b)
    assert "allreduce-sum" not in named


# -- the single-device reference: the seed's maths -----------------------------------------------------
@pytest.mark.torch
def test_replica_shares_add_up_to_the_seed_ports_gradient():
    from parity.cases.catalog.distributed import distributed_case
    from parity.cases.catalog.seed002 import mlp_case
    from parity.run.runner import run_port

    case = distributed_case("test_distributed_single", "single", "mlp", ("torch:single",), steps=2)
    single = run_port(case, "torch:single", "float64")
    seed = run_port(mlp_case("test_distributed_seed", "seed", "clip_value", steps=2, ports=("torch",)), "torch", "float64")
    for step in range(2):
        grads = single.steps[step]["gradients"]
        for name, g in seed.steps[step]["gradients"].items():
            total = sum(grads[f"replica{r}/{name}"] for r in range(WORLD))
            scale = np.abs(g).max()
            # float64, two shares of a 50-row batch mean and one sum: a few roundings of O(scale)
            assert np.abs(grads[name] - g).max() <= FLOAT64_SEMANTIC * scale, name
            assert np.abs(total - g).max() <= FLOAT64_SEMANTIC * scale, name
        assert np.isclose(single.steps[step]["loss"]["loss"], seed.steps[step]["loss"]["loss"], rtol=FLOAT64_SEMANTIC, atol=0)


@pytest.mark.torch
@pytest.mark.distributed
def test_ddp_matches_the_single_device():
    from parity.cases.catalog.distributed import distributed_case
    from parity.run.runner import run_port

    case = distributed_case("test_distributed_ddp", "ddp", "mlp", ("torch:single", "torch"), steps=2)
    a, b = run_port(case, "torch:single", "float64"), run_port(case, "torch", "float64")
    cmp = compare(a, b, cost=case.cost)
    assert cmp.ok and not cmp.issues, cmp.first_divergence and cmp.first_divergence.describe()
    assert cmp.worst_rel() <= FLOAT64_SEMANTIC
    assert sorted(n for n in b.steps[0]["gradients"] if n.startswith("replica1/")) == [
        "replica1/hidden1/bias", "replica1/hidden1/kernel", "replica1/hidden2/bias", "replica1/hidden2/kernel",
        "replica1/output/bias", "replica1/output/kernel"]


# -- slow: the registered cases, as `parity run --tag distributed` runs them ------------------------------
MATCHING = ("distributed_mlp", "distributed_bn_convnet")
WRONG = {
    # case: (stage of the first divergence at step 0, the pitfall named first)
    "pitfall_replica_loss_average_wrong": ("loss", "replica-loss-average"),
    "distributed_torch_global_batch_loss": ("loss", "replica-loss-average"),
    "pitfall_allreduce_sum_wrong": ("gradients", "allreduce-sum"),
    "pitfall_lr_world_size_wrong": ("learning_rate", "lr-world-size"),
    "pitfall_replica_batchnorm_wrong": ("forward", "replica-batchnorm"),
    "distributed_tf_local_bn": ("forward", "replica-batchnorm"),
    "pitfall_replica_dropout_masks_wrong": ("forward", "replica-dropout-masks"),
}


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("name", MATCHING)
def test_mirrored_strategy_ddp_and_one_device_agree(name):
    from parity.run.runner import run_case

    result = run_case(name)
    assert result.passed, [(c.pair, c.dtype, c.first_divergence and c.first_divergence.describe()) for c in result.comparisons]
    pairs = {(c.pair, c.dtype) for c in result.comparisons}
    for dtype in ("float64", "float32"):
        assert pairs >= {("tf2 vs torch", dtype), ("torch:single vs tf2", dtype), ("torch:single vs torch", dtype)}
    for c in result.comparisons:
        if c.dtype == "float64":
            assert c.worst_rel() <= FLOAT64_SEMANTIC, (c.pair, c.worst_rel())


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.tf
@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_port_is_caught_at_its_step_and_stage_and_named(name):
    from parity.run.runner import run_case

    stage, pitfall = WRONG[name]
    result = run_case(name)
    assert not any(result.errors.values()), result.errors
    for cmp in result.comparisons:
        first = cmp.first_divergence
        assert first is not None and (first.step, first.stage) == (0, stage), first and first.describe()
        names = [d.pitfall for d in diagnose(result.case, cmp, result.traces[cmp.dtype])]
        assert names[:1] == [pitfall], (cmp.dtype, names)
