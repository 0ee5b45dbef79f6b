"""Untrained state (BatchNorm statistics, a sub-model the optimizer does not train) maps by kind and by its
layer, not by shape alone: a moving mean pairs with a running mean, never with another layer's untrained
bias of unknown kind (a ConvTranspose2d's), and a BatchNorm's statistics follow its gamma's pairing.
Corpus pair 02 (DCGAN, the D step: the generator's variables are state there). numpy only."""

import pytest

from parity.portkit.program import ParamSpec
from parity.program.mapping import AmbiguousMapping, auto_map


def _spec(name, shape, kind, layer, trainable=True):
    return ParamSpec(name, shape, kind, layer, trainable)


def _bn(prefix, width, trainable, torch):
    """One BatchNorm layer's four variables, TF1 (``prefix/gamma``...) or torch (``prefix.weight``...) names."""
    names = ("weight", "bias", "running_mean", "running_var") if torch else ("gamma", "beta", "moving_mean", "moving_variance")
    kinds = ("bn_gamma", "bn_beta", "bn_mean", "bn_var")
    sep = "." if torch else "/"
    return [_spec(f"{prefix}{sep}{n}", (width,), k, prefix, trainable and k in ("bn_gamma", "bn_beta"))
            for n, k in zip(names, kinds)]


def _gan(d_trained_only: bool):
    """A generator and a discriminator, each with one BatchNorm of width 32; the generator's transposed conv
    has a bias of width 32 the torch capture cannot classify (kind "other"). ``d_trained_only``: the D step,
    where the generator is state."""
    g = not d_trained_only
    ref = ([_spec("generator/g_h1/biases", (32,), "bias", "generator/g_h1", g)] + _bn("generator/g_bn1", 32, g, False)
           + [_spec("discriminator/d_h2/w", (5, 5, 16, 32), "conv_kernel", "discriminator/d_h2")]
           + _bn("discriminator/d_bn2", 32, True, False))
    port = ([_spec("G.main.0.deconv.bias", (32,), "other", "G.main.0.deconv", g)] + _bn("G.main.1", 32, g, True)
            + [_spec("D.main.5.conv.weight", (32, 16, 5, 5), "conv_kernel", "D.main.5.conv")]
            + _bn("D.main.6", 32, True, True))
    return ref, port


def _pairs(m):
    return {e.reference: e.port for e in m.params}


def test_batchnorm_statistics_pair_by_kind_and_follow_their_layers_gamma():
    ref, port = _gan(d_trained_only=True)
    m = auto_map(ref, "tf1", port, "torch")  # no probe: the kinds and the layers decide
    pairs = _pairs(m)
    assert pairs["discriminator/d_bn2/moving_mean"] == "D.main.6.running_mean"
    assert pairs["discriminator/d_bn2/moving_variance"] == "D.main.6.running_var"
    assert pairs["generator/g_bn1/moving_mean"] == "G.main.1.running_mean"
    assert pairs["generator/g_bn1/moving_variance"] == "G.main.1.running_var"
    assert pairs["generator/g_bn1/gamma"] == "G.main.1.weight"
    # a statistic never pairs with a bias, and no pair crosses the two sub-models
    assert all(("generator" in r) == p.startswith("G.") for r, p in pairs.items())


def test_the_statistics_still_follow_their_gamma_when_both_sub_models_train():
    # both BatchNorms trained: their gammas are one group; the probe decides them (G's layer agrees under one
    # pairing only), and the statistics follow
    ref, port = _gan(d_trained_only=False)

    def score(m):
        return 2 if dict((e.reference, e.port) for e in m.params)["generator/g_bn1/gamma"] == "G.main.1.weight" else 1

    pairs = _pairs(auto_map(ref, "tf1", port, "torch", score=score))
    assert pairs["generator/g_bn1/moving_mean"] == "G.main.1.running_mean"
    assert pairs["discriminator/d_bn2/moving_variance"] == "D.main.6.running_var"


def test_a_statistic_without_its_kind_on_the_other_side_is_still_refused():
    # the port has no BatchNorm in G: its moving statistics have no partner (a bias is no candidate)
    ref, port = _gan(d_trained_only=True)
    port = [s for s in port if not s.name.startswith("G.main.1")]
    with pytest.raises(AmbiguousMapping) as e:
        auto_map(ref, "tf1", port, "torch")
    assert "generator/g_bn1/moving_mean" in str(e.value)


def test_without_a_probe_the_sub_models_names_decide_and_a_note_says_so():
    # both sub-models trained, no probe: generator/... pairs with G., discriminator/... with D.
    ref, port = _gan(d_trained_only=False)
    m = auto_map(ref, "tf1", port, "torch")
    pairs = _pairs(m)
    assert pairs["generator/g_bn1/gamma"] == "G.main.1.weight" and pairs["discriminator/d_bn2/beta"] == "D.main.6.bias"
    assert pairs["generator/g_bn1/moving_mean"] == "G.main.1.running_mean"
    assert any("by their names" in n and "generator/g_bn1/gamma -> G.main.1.weight" in n for n in m.notes), m.notes


def test_sub_models_whose_names_do_not_pair_still_stop():
    ref, port = _gan(d_trained_only=False)
    rename = {"G": "A", "D": "B"}  # A. and B. start neither generator nor discriminator
    port = [ParamSpec(rename[s.name[0]] + s.name[1:], s.shape, s.kind, rename[s.name[0]] + s.layer[1:], s.trainable) for s in port]
    with pytest.raises(AmbiguousMapping):
        auto_map(ref, "tf1", port, "torch")


def test_model_pick_needs_one_sub_model_per_variable_both_ways():
    from parity.program.mapping.evidence import model_pick
    assert model_pick(["generator/a", "discriminator/a"], ["D.a", "G.a"]) == {"generator/a": "G.a", "discriminator/a": "D.a"}
    assert model_pick(["generator/a", "gen2/a"], ["G.a", "D.a"]) is None  # two reference roots start with g
    assert model_pick(["model/a", "model/b"], ["m.a", "m.b"]) is None  # one sub-model: names do not decide


@pytest.mark.tf
@pytest.mark.torch
def test_tf1_conv2d_transpose_maps_to_conv_transpose2d_and_agrees():
    # corpus 02 (DCGAN): torch's ConvTranspose2d weight [in, out, kh, kw] was of kind "other" and found no
    # partner; under the conv layout (oihw>hwio) it is TF's conv2d_transpose kernel [kh, kw, out, in]
    import os

    from parity.program.prepare import compare_programs

    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "mapping")
    result = compare_programs(os.path.join(here, "tf1_deconv.py"), os.path.join(here, "torch_deconv.py"), steps=3)
    pairs = {e.reference: e.port for e in result.mapping.params}
    assert pairs["g_h1/w"] == "h1.weight" and pairs["g_h1/biases"] == "h1.bias"
    for c in result.comparisons:
        assert c.ok, f"{c.dtype}: {c.verdict} at {c.first}"  # parity's own verdict: no tolerance set here
