"""Each TF1 / Keras example against its PyTorch port with `parity diff`'s machinery, and the planted
torch mistakes against the TF references: caught at the right step and stage, and named.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.pitfalls.diagnose import diagnose  # noqa: E402
from parity.program.mapping import load_mapping, save_mapping  # noqa: E402
from parity.program.prepare import compare_programs  # noqa: E402

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def ex(*parts):
    return os.path.join(EX, *parts)


def comparison(result, dtype):
    return next(c for c in result.comparisons if c.dtype == dtype)


def named(result, dtype="float64"):
    c = comparison(result, dtype)
    return [d.pitfall for d in diagnose(result.case, c, result.traces[dtype])]


PAIRS = [
    pytest.param("seed000", "tf1_encoder.py", "torch_encoder.py", {"forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters"}, id="seed000"),
    pytest.param("seed002", "tf1_mlp.py", "torch_mlp.py", {"forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters", "slots", "constrained"}, id="seed002"),
    pytest.param("seed004", "tf1_minimize.py", "torch_minimize.py", {"loss", "gradients", "processed_gradients", "learning_rate", "parameters"}, id="seed004"),
    pytest.param("seed001", "tf1_convnet.py", "torch_convnet.py", {"forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters", "slots"}, id="seed001", marks=pytest.mark.slow),
    pytest.param("seed003", "keras_bn_convnet.py", "torch_bn_convnet.py", {"forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters", "slots", "state"}, id="seed003",
                 marks=pytest.mark.slow),
    pytest.param("resnet", "tf1_resnet.py", "torch_resnet.py", {"forward", "loss", "gradients", "processed_gradients", "learning_rate", "parameters", "slots", "state"}, id="resnet", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("folder,ref,port,stages", PAIRS)
def test_example_pair_agrees_in_both_dtypes(folder, ref, port, stages):
    if not os.path.exists(ex(folder, ref)):
        pytest.skip(f"{folder}/{ref} is not written yet")
    r = compare_programs(ex(folder, ref), ex(folder, port), steps=3)
    assert not any(r.errors.values()), r.errors
    for c in r.comparisons:
        assert c.ok, (c.dtype, c.first_divergence and c.first_divergence.describe())
        compared = {d.stage for d in c.diffs} - {"inputs"}
        assert compared == stages, (c.dtype, sorted(compared))
    # float64: faithful ports agree to ~1e-15 relative; 1e-10 is the harness's float64 semantic line
    assert comparison(r, "float64").worst_rel() < 1e-10


def test_planted_zero_grad_against_the_tf1_mlp():
    r = compare_programs(ex("seed002", "tf1_mlp.py"), ex("mistakes", "torch_mlp_no_zero_grad.py"), steps=3)
    for dtype in ("float64", "float32"):
        d = comparison(r, dtype).first_divergence
        assert (d.step, d.stage) == (1, "gradients"), d.describe()
        assert named(r, dtype)[0] == "zero-grad"


@pytest.mark.slow
def test_planted_adam_epsilon_against_the_tf1_convnet():
    r = compare_programs(ex("seed001", "tf1_convnet.py"), ex("mistakes", "torch_convnet_adam_eps.py"), steps=2, dtypes=("float64",))
    d = comparison(r, "float64").first_divergence
    assert (d.step, d.stage) == (0, "parameters"), d.describe()
    assert named(r)[0] == "adam-epsilon"


@pytest.mark.slow
def test_planted_zero_grad_against_the_tf1_convnet():
    r = compare_programs(ex("seed001", "tf1_convnet.py"), ex("mistakes", "torch_convnet_no_zero_grad.py"), steps=2, dtypes=("float64",))
    d = comparison(r, "float64").first_divergence
    assert (d.step, d.stage) == (1, "gradients"), d.describe()
    assert named(r)[0] == "zero-grad"


@pytest.mark.slow
def test_planted_eval_mode_against_the_keras_bn_convnet():
    r = compare_programs(ex("seed003", "keras_bn_convnet.py"), ex("mistakes", "torch_bn_convnet_eval.py"), steps=2, dtypes=("float64",))
    d = comparison(r, "float64").first_divergence
    assert (d.step, d.stage) == (0, "forward"), d.describe()
    assert named(r)[0] == "torch-eval-mode"


@pytest.mark.slow
def test_planted_flatten_rows_not_permuted_against_the_tf1_convnet(tmp_path):
    path = str(tmp_path / "m.json")
    compare_programs(ex("seed001", "tf1_convnet.py"), ex("seed001", "torch_convnet.py"), steps=1, dtypes=("float64",), save_mapping=path)
    m = load_mapping(path)
    hits = [e for e in m.params if any(o.startswith("rows_") for o in e.port_ops)]
    assert len(hits) == 1  # the first Dense after the convs
    for e in hits:
        e.port_ops = [o for o in e.port_ops if not o.startswith("rows_")]  # the mistake
    save_mapping(m, path)
    r = compare_programs(ex("seed001", "tf1_convnet.py"), ex("seed001", "torch_convnet.py"), steps=2, dtypes=("float64",), mapping=path)
    d = comparison(r, "float64").first_divergence
    assert (d.step, d.stage) == (0, "forward"), d.describe()
    assert named(r)[0] == "flatten-order"  # the torch side records the map its flatten reads: "(flatten input)"
