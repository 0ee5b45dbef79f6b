"""parity.strategies: eager validation (one table of invalid arguments), and dense_case."""

import pytest
from hypothesis import given, settings
from hypothesis.errors import InvalidArgument

from parity.errors import ParityError
from parity.strategies import (
    activations,
    clips,
    dense_case,
    dense_configs,
    dtypes,
    init_scales,
    losses,
    max_norms,
    network_shapes,
    normalize_config,
    optimizers,
    schedules,
)

# One table: each call must raise InvalidArgument when the strategy is built, not at draw time.
INVALID = [
    (network_shapes, {"min_depth": 0}),
    (network_shapes, {"min_depth": 3, "max_depth": 2}),
    (network_shapes, {"min_width": 0}),
    (network_shapes, {"min_width": 5, "max_width": 4}),
    (network_shapes, {"min_depth": 1.5}),
    (network_shapes, {"min_outputs": 9, "max_width": 4}),
    (activations, {"names": ("gelu",)}),
    (activations, {"names": "relu"}),
    (activations, {"names": ()}),
    (losses, {"names": ("hinge",)}),
    (losses, {"reductions": ("none",)}),
    (init_scales, {"min_scale": 0.0}),
    (init_scales, {"min_scale": 1.0, "max_scale": 0.1}),
    (init_scales, {"min_scale": float("nan")}),
    (optimizers, {"names": ("lamb",)}),
    (optimizers, {"min_lr": -1.0}),
    (optimizers, {"min_lr": 1.0, "max_lr": 0.1}),
    (optimizers, {"min_epsilon": 0.0}),
    (optimizers, {"min_epsilon": 1.0, "max_epsilon": 1e-3}),
    (optimizers, {"max_momentum": 1.0}),
    (optimizers, {"nesterov": "yes"}),
    (schedules, {"kinds": ("cosine",)}),
    (schedules, {"max_decay_steps": 0}),
    (clips, {"kinds": ("norm2",)}),
    (clips, {"min_limit": 0.0}),
    (clips, {"min_limit": 2.0, "max_limit": 1.0}),
    (max_norms, {"axes": (2,)}),
    (max_norms, {"axes": ()}),
    (max_norms, {"min_radius": -1.0}),
    (dtypes, {"names": ("float16",)}),
    (dense_configs, {"min_batch": 0}),
    (dense_configs, {"min_steps": 4, "max_steps": 2}),
    (dense_configs, {"min_data_scale": 0.0}),
    (dense_configs, {"optimizer": {"name": "sgd"}}),
]


@pytest.mark.parametrize("fn,kwargs", INVALID, ids=[f"{f.__name__}-{'-'.join(k)}" for f, k in INVALID])
def test_invalid_arguments_raise_eagerly(fn, kwargs):
    with pytest.raises(InvalidArgument):
        fn(**kwargs)


@settings(max_examples=50, deadline=None, database=None)
@given(dense_configs())
def test_drawn_configs_are_valid_cases(config):
    case = dense_case(config)
    cfg = case.options
    assert case.module == "dense"
    assert 1 <= len(cfg["widths"]) - 1 <= 4
    assert set(case.params) == {f"dense{i}/{k}" for i in range(len(cfg["widths"]) - 1) for k in ("kernel", "bias")}
    if cfg["loss"] == "softmax_xent":
        assert cfg["widths"][-1] >= 2
    # the config round-trips as a Python literal (failures print it; replays eval it)
    assert normalize_config(eval(repr(dict(cfg)))) == dict(cfg)


@settings(max_examples=30, deadline=None, database=None)
@given(network_shapes(min_depth=2, max_depth=3, min_width=2, max_width=3))
def test_network_shapes_respect_bounds(widths):
    assert 2 <= len(widths) - 1 <= 3 and all(2 <= w <= 3 for w in widths)


BAD_CONFIGS = [
    {},
    {"widths": (3,)},
    {"widths": (3, 0)},
    {"widths": (3, 2), "activation": "gelu"},
    {"widths": (3, 1), "loss": "softmax_xent"},
    {"widths": (3, 2), "optimizer": {"name": "sgd", "lr": 0}},
    {"widths": (3, 2), "optimizer": {"name": "sgd", "momentum": 0.9}},
    {"widths": (3, 2), "optimizer": {"name": "momentum", "momentum": 0.0, "nesterov": True}},
    {"widths": (3, 2), "optimizer": {"name": "adam", "beta1": 1.0}},
    {"widths": (3, 2), "schedule": {"kind": "polynomial", "decay_steps": 0}},
    {"widths": (3, 2), "clip": {"kind": "value", "limit": -1}},
    {"widths": (3, 2), "max_norm": {"radius": 1.0, "axis": 2}},
    {"widths": (3, 2), "steps": -1},
    {"widths": (3, 2), "colour": "blue"},
]


@pytest.mark.parametrize("config", BAD_CONFIGS, ids=range(len(BAD_CONFIGS)))
def test_dense_case_rejects_bad_configs(config):
    with pytest.raises(ParityError):
        dense_case(config)


def test_dense_case_fills_defaults_and_draws_data():
    from parity.cases.data import batches

    case = dense_case({"widths": (3, 4, 2), "loss": "softmax_xent", "steps": 2, "batch": 5})
    assert case.options["optimizer"] == {"name": "sgd", "lr": 0.1}
    drawn = batches(case)
    assert len(drawn) == 2 and drawn[0]["x"].shape == (5, 3)
    assert (drawn[0]["y"].sum(axis=1) == 1).all()  # one-hot labels


@pytest.mark.parametrize("module", ["tf_impl.v1.dense", "tf_impl.v2.dense"])
def test_the_dense_graph_cache_is_bounded(module, monkeypatch):
    # The thorough profile draws a new structure per example; unbounded, the cache of built
    # graphs grew to 10 GB in 34 minutes. Least recently used structures are dropped.
    pytest.importorskip("tensorflow")
    import importlib

    from parity.run.runner import run_port
    from parity.strategies import dense_case

    mod = importlib.import_module(module)
    monkeypatch.setattr(mod, "CACHE_SIZE", 2)
    mod.clear_cache()
    port = "tf1" if module.endswith("v1.dense") else "tf2"
    for width in (1, 2, 3, 2):
        trace = run_port(dense_case({"widths": (width, 1), "steps": 1}, ports=(port,)), port, "float64")
        assert len(trace.steps) == 1
        assert len(mod._CACHE) <= 2
    assert [k[1][0] for k in mod._CACHE][-1] == ("widths", (2, 1))  # the one used last is kept
    mod.clear_cache()
