"""The automatic mapping never guesses; a mapping file is checked completely (issue 20 item 7).

Same-shape candidates are decided by evidence that is printed (a bias follows its layer's kernel; the
probe forward from the mapped weights), or the run stops in one line naming both lists. A mapping file:
each variable used once, ``"shape"`` as stated, every field and op known (the error lists the valid ones).
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from _cli_support import run_main  # noqa: E402

from parity.errors import ParityError  # noqa: E402
from parity.portkit.program import ParamSpec  # noqa: E402
from parity.program.mapping import OPS, AmbiguousMapping, Mapping_, apply_ops, auto_map, invert_ops, load_mapping  # noqa: E402
from parity.program.prepare import prepare  # noqa: E402

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "mapping")
TF1, TORCH, TANH = (os.path.join(EX, f) for f in ("tf1_two_hidden.py", "torch_two_hidden.py", "torch_two_hidden_tanh.py"))


def _spec(name, shape, kind, layer):
    return ParamSpec(name, shape, kind, layer, True)


def _pairs(m):
    return {e.reference: e.port for e in m.params}


# -- automatic: decided by evidence, or stopped ------------------------------------------------------------
def test_same_shape_layers_without_a_probe_stop_with_both_lists():
    ref = [_spec("h2", (8, 8), "dense_kernel", "h2"), _spec("h1", (8, 8), "dense_kernel", "h1")]
    port = [_spec("fc1.weight", (8, 8), "dense_kernel", "fc1"), _spec("fc2.weight", (8, 8), "dense_kernel", "fc2")]
    with pytest.raises(AmbiguousMapping) as e:
        auto_map(ref, "tf1", port, "torch")
    msg = str(e.value)
    assert "\n" not in msg and "h2, h1" in msg and "fc1.weight, fc2.weight" in msg and "8x8" in msg
    assert _pairs(e.value.draft) == {"h2": "fc1.weight", "h1": "fc2.weight"}  # the draft: in order, to check


def test_a_bias_follows_its_layers_kernel():
    # the kernels differ in shape (decided), the biases do not: each follows its layer
    ref = [_spec("d1/kernel", (4, 8), "dense_kernel", "d1/"), _spec("d2/kernel", (8, 8), "dense_kernel", "d2/"),
           _spec("d2/bias", (8,), "bias", "d2/"), _spec("d1/bias", (8,), "bias", "d1/")]
    port = [_spec("a.weight", (8, 4), "dense_kernel", "a"), _spec("a.bias", (8,), "bias", "a"),
            _spec("b.weight", (8, 8), "dense_kernel", "b"), _spec("b.bias", (8,), "bias", "b")]
    m = auto_map(ref, "tf1", port, "torch")
    assert _pairs(m) == {"d1/kernel": "a.weight", "d2/kernel": "b.weight", "d1/bias": "a.bias", "d2/bias": "b.bias"}
    assert not m.notes


def test_the_probe_decides_and_the_note_says_how():
    ref = [_spec("h2", (8, 8), "dense_kernel", "h2"), _spec("h1", (8, 8), "dense_kernel", "h1")]
    port = [_spec("fc1.weight", (8, 8), "dense_kernel", "fc1"), _spec("fc2.weight", (8, 8), "dense_kernel", "fc2")]
    m = auto_map(ref, "tf1", port, "torch", score=lambda c: 3 if _pairs(c) == {"h1": "fc1.weight", "h2": "fc2.weight"} else 1)
    assert _pairs(m) == {"h1": "fc1.weight", "h2": "fc2.weight"}
    assert any("paired by the probe forward" in n and "h1 -> fc1.weight" in n for n in m.notes)
    with pytest.raises(AmbiguousMapping, match="agrees equally under several pairings"):
        auto_map(ref, "tf1", port, "torch", score=lambda c: 2)


def test_names_decide_when_the_probe_cannot():
    ref = [_spec("w1", (), "other", "w1"), _spec("w2", (), "other", "w2")]
    port = [_spec("w2", (), "other", ""), _spec("w1", (), "other", "")]
    m = auto_map(ref, "tf1", port, "torch", score=lambda c: 0)  # y = (w1 + w2) x: no output tells them apart
    assert _pairs(m) == {"w1": "w1", "w2": "w2"}
    assert any("paired by their names" in n for n in m.notes)


def test_batchnorm_layers_initialised_alike_pair_by_the_moved_probe():
    # five BatchNorm layers with gamma = 1, beta = 0 and four same-shape convs: the probe moves every
    # weight a little, so the right pairing is the only one under which the layer outputs agree
    ex = os.path.join(os.path.dirname(EX), "resnet")
    run = prepare(os.path.join(ex, "tf1_resnet.py"), os.path.join(ex, "torch_resnet.py"), steps=1)
    pairs = _pairs(run.mapping)
    assert pairs["block1/b_bn/gamma"] == "block1.bn2.weight" and pairs["block2/a_conv/kernel"] == "block2.conv1.weight"
    assert pairs["block2/b_bn/moving_variance"] == "block2.bn2.running_var"
    assert any("paired by the probe forward" in n for n in run.notes)
    initial = run.initial["block1/a_bn/gamma"]
    assert np.all(initial == 1.0)  # the probe's moved weights were put back


def test_tf1_layers_created_in_the_other_order_pair_by_the_probe():
    run = prepare(TF1, TORCH, steps=1)
    pairs = _pairs(run.mapping)
    assert pairs["h1"] == "fc1.weight" and pairs["h2"] == "fc2.weight"  # creation order alone pairs h2 with fc1
    assert pairs["b1"] == "fc1.bias" and pairs["b2"] == "fc2.bias"
    assert any("paired by the probe forward" in n and "h1 -> fc1.weight" in n for n in run.notes)


def test_tf1_layers_nothing_decides_stop_the_cli_in_one_line(capsys):
    # the port's first activation is wrong (tanh): every pairing of the 8x8 layers agrees on the first
    # layer's output only, so nothing decides which 8x8 kernel is which
    code, out, err = run_main(capsys, "diff", TF1, TANH, "--steps", "1", "--dtype", "float64")
    assert code == 2, out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "h2, h1" in lines[0] and "fc1.weight, fc2.weight" in lines[0] and "--mapping" in lines[0]


# -- a mapping file is checked completely -------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved():
    """The automatic mapping of the torch port onto itself, as its JSON."""
    return prepare(TORCH, TORCH, steps=1).mapping.to_json()


def _load(tmp_path, data):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(data))
    return str(path)


def _one_line_error(tmp_path, data, **kw):
    with pytest.raises(ParityError) as e:
        prepare(TORCH, TORCH, steps=1, mapping=_load(tmp_path, data), **kw)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_the_saved_mapping_is_accepted_back(tmp_path, saved):
    run = prepare(TORCH, TORCH, steps=1, mapping=_load(tmp_path, saved))
    assert _pairs(run.mapping) == {e["reference"]: e["port"] for e in saved["params"]}


def test_a_variable_used_twice_is_an_error(tmp_path, saved):
    data = json.loads(json.dumps(saved))
    fc1 = next(e for e in data["params"] if e["port"] == "fc1.weight")
    fc2 = next(e for e in data["params"] if e["port"] == "fc2.weight")
    fc2["port"] = "fc1.weight"
    msg = _one_line_error(tmp_path, data)
    assert "fc1.weight" in msg and "used twice" in msg
    fc2["port"], fc2["reference"] = "fc2.weight", fc1["reference"]
    msg = _one_line_error(tmp_path, data)
    assert fc1["reference"] in msg and "reference" in msg and "used twice" in msg


def test_an_edited_shape_is_an_error_not_ignored(tmp_path, saved):
    data = json.loads(json.dumps(saved))
    e = next(e for e in data["params"] if e["port"] == "inp.weight")
    assert e["shape"] == [4, 8]  # canonical (TF) layout: [in, out]
    e["shape"] = [8, 4]
    msg = _one_line_error(tmp_path, data)
    assert "inp.weight" in msg and "[8, 4]" in msg and "[4, 8]" in msg and "'shape'" in msg
    del e["shape"]  # no shape stated: the ops decide it
    run = prepare(TORCH, TORCH, steps=1, mapping=_load(tmp_path, data))
    assert run.mapping.by_port()["inp.weight"].shape == (4, 8)


@pytest.mark.parametrize("where, field", [("entry", "layout"), ("file", "variables")])
def test_an_unknown_field_is_named_with_the_accepted_ones(tmp_path, saved, where, field):
    data = json.loads(json.dumps(saved))
    (data["params"][0] if where == "entry" else data)[field] = 1
    msg = _one_line_error(tmp_path, data)
    assert f"unknown field {field!r}" in msg
    assert ("reference_ops, port_ops, shape" in msg) if where == "entry" else ("params, forward" in msg)


def test_an_unknown_op_or_kind_lists_the_valid_ones(tmp_path, saved):
    data = json.loads(json.dumps(saved))
    data["params"][0]["port_ops"] = ["transpose"]
    msg = _one_line_error(tmp_path, data)
    assert "unknown layout op 'transpose'" in msg and "valid ops: " + ", ".join(OPS) in msg
    data["params"][0]["port_ops"] = ["T"]
    data["params"][0]["kind"] = "dense"
    assert "unknown kind \"dense\"; kinds: dense_kernel" in _one_line_error(tmp_path, data)
    data["params"][0]["kind"] = "dense_kernel"
    data["params"][0]["port"] = "TODO"
    assert "still \"TODO\"" in _one_line_error(tmp_path, data)


def test_gate_permutation_ops_are_exact_inverses():
    x = np.arange(2 * 12.0).reshape(2, 12)
    ops = ["gates:ijfo>ifjo"]
    y = apply_ops(ops, x)
    assert np.array_equal(y[:, 3:6], x[:, 6:9]) and np.array_equal(y[:, 6:9], x[:, 3:6])  # f and j swapped
    assert np.array_equal(apply_ops(invert_ops(ops), y), x)
    with pytest.raises(ParityError, match="4 equal gate blocks"):
        apply_ops(ops, np.zeros(10))
    with pytest.raises(ParityError, match="same distinct gate letters"):
        Mapping_.from_json({"format": 1, "params": [{"reference": "a", "port": "b", "port_ops": ["gates:ijfo>ifgo"]}]})


def test_leave_out_drops_pairs_from_every_stage_and_says_so(tmp_path, saved):
    data = dict(json.loads(json.dumps(saved)), leave_out=["nope"])
    msg = _one_line_error(tmp_path, data)
    assert "'leave_out' names nope" in msg and "fc1.weight" in msg
    data["leave_out"] = ["fc1.weight", "inp.bias/momentum"]
    m = prepare(TORCH, TORCH, steps=1, mapping=_load(tmp_path, data)).mapping
    assert any("left out by the mapping file" in n and "fc1.weight" in n for n in m.notes)
    arrays = {"fc1.weight": np.ones((8, 8)), "inp.bias": np.ones(8), "fc2.weight": np.ones((8, 8))}
    assert set(m.canonical("port", arrays, "gradients")) == {"inp.bias", "fc2.weight"}
    slots = {"inp.bias/momentum": np.ones(8), "fc2.bias/momentum": np.ones(8), "fc1.weight/momentum": np.ones((8, 8))}
    assert set(m.canonical("port", slots, "slots")) == {"fc2.bias/momentum"}
