"""Layer outputs paired by the layers the variable mapping pairs (issue 24, corpus pair 02: a GAN whose TF1
program builds G then D while its port calls D(real), G, D(fake)). Synthetic outputs; numpy only."""

import numpy as np

from parity.portkit.program import ParamSpec
from parity.program.outputs import Owners, owner_of, owners_from, pair_outputs


def _owners():
    # generator/g_h1 ~ G.main.0.deconv, generator/g_bn1 ~ G.main.1, discriminator/d_h0_conv ~ D.main.0.conv, ...
    links = {("generator/g_h1", "G.main.0.deconv"), ("generator/g_bn1", "G.main.1"),
             ("discriminator/d_h0_conv", "D.main.0.conv"), ("discriminator/d_h1_conv", "D.main.2.conv")}
    return Owners({a for a, _ in links}, {b for _, b in links}, links)


def _gan(rng):
    g1, g2 = rng.normal(size=(8, 8, 8, 4)), rng.normal(size=(8, 8, 8, 4))
    d_real0, d_real1 = rng.normal(size=(8, 4, 4, 8)), rng.normal(size=(8, 2, 2, 16))
    d_fake0, d_fake1 = rng.normal(size=(8, 4, 4, 8)), rng.normal(size=(8, 2, 2, 16))
    ref = {"generator/g_h1/conv2d_transpose": g1, "generator/g_bn1/batch_normalization": g2,
           "discriminator/d_h0_conv/BiasAdd": d_real0, "discriminator/d_h1_conv/BiasAdd": d_real1,
           "discriminator_1/d_h0_conv/BiasAdd": d_fake0, "discriminator_1/d_h1_conv/BiasAdd": d_fake1}
    port = {"D.main.0.conv": d_real0, "D.main.2.conv": d_real1, "G.main.0.deconv": g1, "G.main.1": g2,
            "D.main.0.conv#2": d_fake0, "D.main.2.conv#2": d_fake1}
    kinds_r = {k: "norm" if "bn" in k else "conv" for k in ref}
    kinds_p = {"D.main.0.conv": "conv", "D.main.2.conv": "conv", "G.main.0.deconv": "conv", "G.main.1": "norm",
               "D.main.0.conv#2": "conv", "D.main.2.conv#2": "conv"}
    return ref, port, kinds_r, kinds_p


def test_sub_models_called_in_another_order_pair_within_each_sub_model():
    ref, port, kr, kp = _gan(np.random.default_rng(0))
    p = pair_outputs(ref, port, kr, kp, owners=_owners())
    assert p.pairs == [("generator/g_h1/conv2d_transpose", "G.main.0.deconv"), ("generator/g_bn1/batch_normalization", "G.main.1"),
                       ("discriminator/d_h0_conv/BiasAdd", "D.main.0.conv"), ("discriminator/d_h1_conv/BiasAdd", "D.main.2.conv"),
                       ("discriminator_1/d_h0_conv/BiasAdd", "D.main.0.conv#2"),
                       ("discriminator_1/d_h1_conv/BiasAdd", "D.main.2.conv#2")]
    assert p.confirmed == set(p.pairs) and not p.reshaped
    assert any("within each sub-model" in n for n in p.notes)
    # without the mapping's layers: call order alone pairs G's layers with D's (the corpus's false STRUCTURE)
    blind = pair_outputs(ref, port, kr, kp)
    assert ("generator/g_h1/conv2d_transpose", "D.main.0.conv") in blind.pairs


def test_an_output_pairs_only_with_the_layer_the_mapping_pairs_with_its_layer():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    owners = Owners({"dense", "dense_1"}, {"fc1", "fc2"}, {("dense", "fc2"), ("dense_1", "fc1")})
    # created and called in the other order: the mapping (by evidence) pairs dense ~ fc2; call order would not
    p = pair_outputs({"dense/BiasAdd": a, "dense_1/BiasAdd": b}, {"fc1": b, "fc2": a},
                     {"dense/BiasAdd": "linear", "dense_1/BiasAdd": "linear"}, {"fc1": "linear", "fc2": "linear"},
                     owners=owners)
    assert len(p.pairs) == 1 and p.pairs[0] in {("dense/BiasAdd", "fc2"), ("dense_1/BiasAdd", "fc1")}
    left = [k for k in p.reasons if k.startswith("reference ")]
    assert len(left) == 1 and "pairs with the port's" in p.reasons[left[0]]


def test_an_output_between_two_sub_models_pairs_only_where_the_probe_confirms_it():
    ref, port, kr, kp = _gan(np.random.default_rng(2))
    tanh = np.tanh(ref["generator/g_bn1/batch_normalization"])
    ref = dict(list(ref.items())[:2] + [("generator/Tanh", tanh)] + list(ref.items())[2:])
    kr["generator/Tanh"] = "activation"
    order = ["D.main.0.conv", "D.main.2.conv", "G.main.0.deconv", "G.main.1", "F.tanh", "D.main.0.conv#2", "D.main.2.conv#2"]
    kp["F.tanh"] = "activation"
    p = pair_outputs(ref, {k: (tanh if k == "F.tanh" else port[k]) for k in order}, kr, kp, owners=_owners())
    assert ("generator/Tanh", "F.tanh") in p.pairs and ("generator/Tanh", "F.tanh") in p.confirmed
    # a value that differs: not paired, and the reason says why
    q = pair_outputs(ref, {k: (tanh + 1 if k == "F.tanh" else port[k]) for k in order}, kr, kp, owners=_owners())
    assert all("F.tanh" not in pair for pair in q.pairs)
    assert "between the sub-models" in q.reasons["port F.tanh"]


def test_a_layer_cut_at_another_place_is_left_out_only_when_the_next_output_agrees():
    ref, port, kr, kp = _gan(np.random.default_rng(3))
    uncropped = np.zeros((8, 11, 11, 4))
    port = dict(port, **{"G.main.0.deconv": uncropped})  # ConvTranspose2d before the crop of its module
    p = pair_outputs(ref, port, kr, kp, owners=_owners())
    assert all("G.main.0.deconv" not in pair for pair in p.pairs) and not p.reshaped
    assert "cut at another place" in p.reasons["reference generator/g_h1/conv2d_transpose"]
    # the next output differs too (padding changes what follows): paired, reported as a shape difference
    port2 = dict(port, **{"G.main.1": np.zeros((8, 11, 11, 4))})
    q = pair_outputs(ref, port2, kr, kp, owners=_owners())
    assert ("generator/g_h1/conv2d_transpose", "G.main.0.deconv") in q.pairs and q.reshaped


def test_a_shape_difference_after_outputs_that_already_differ_is_left_out_undecided():
    rng = np.random.default_rng(5)
    h0, bn = rng.normal(size=(8, 4, 4, 8)), rng.normal(size=(8, 8, 8, 4))
    links = {("generator/g_h0_lin", "G.lin"), ("generator/g_h1", "G.deconv"), ("generator/g_bn1", "G.bn1"),
             ("discriminator/d_h0_conv", "D.conv")}
    owners = Owners({a for a, _ in links}, {b for _, b in links}, links)
    ref = {"generator/g_h0_lin/add": h0, "generator/g_h1/conv2d_transpose": rng.normal(size=(8, 8, 8, 4)),
           "generator/g_bn1/batch_normalization": bn, "discriminator/d_h0_conv/BiasAdd": rng.normal(size=(8, 4, 4, 2))}
    port = {"G.lin": h0 + 1, "G.deconv": rng.normal(size=(8, 11, 11, 4)), "G.bn1": bn + 1,  # z drawn by the port
            "D.conv": rng.normal(size=(8, 4, 4, 2))}
    kinds = ["linear", "conv", "norm", "conv"]
    p = pair_outputs(ref, port, dict(zip(ref, kinds)), dict(zip(port, kinds)), owners=owners)
    assert ("generator/g_h1/conv2d_transpose", "G.deconv") not in p.pairs and not p.reshaped
    assert "the probe cannot tell" in p.reasons["reference generator/g_h1/conv2d_transpose"]
    assert ("generator/g_h0_lin/add", "G.lin") in p.pairs  # where the values first differ: compared


def test_layers_at_the_top_are_not_sub_models_and_without_links_nothing_changes():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    ref, port = {"gc1/MatMul": x, "Relu": np.maximum(x, 0), "gc2/MatMul": y}, {"gc1/F.mm": x, "F.relu": np.maximum(x, 0), "gc2/F.mm": y}
    kr = {"gc1/MatMul": "linear", "Relu": "activation", "gc2/MatMul": "linear"}
    kp = {"gc1/F.mm": "linear", "F.relu": "activation", "gc2/F.mm": "linear"}
    owners = Owners({"gc1", "gc2"}, {"gc1", "gc2"}, {("gc1", "gc1"), ("gc2", "gc2")})
    assert pair_outputs(ref, port, kr, kp, owners=owners).pairs == pair_outputs(ref, port, kr, kp).pairs == [
        ("gc1/MatMul", "gc1/F.mm"), ("Relu", "F.relu"), ("gc2/MatMul", "gc2/F.mm")]
    assert pair_outputs(ref, port, kr, kp, owners=Owners()).pairs == pair_outputs(ref, port, kr, kp).pairs


def test_owner_of_reads_torch_calls_and_tf_scopes_entered_again():
    layers = {"discriminator/d_h0_conv", "discriminator/d_h0_conv_1", "G.main.0.deconv", "G.main"}
    assert owner_of("discriminator_1/d_h0_conv/BiasAdd", layers) == "discriminator/d_h0_conv"
    assert owner_of("discriminator/d_h0_conv_1/BiasAdd", layers) == "discriminator/d_h0_conv_1"  # a layer of its own
    assert owner_of("G.main.0.deconv#2", layers) == "G.main.0.deconv"
    assert owner_of("G.main.2", layers) == "G.main" and owner_of("F.relu", layers) is None


def test_owners_from_a_mapping_pairs_the_layers_of_its_variables():
    class M:
        class E:
            def __init__(self, r, p):
                self.reference, self.port = r, p
        params = [E("generator/g_h1/w", "G.main.0.deconv.weight"), E("generator/g_h1/biases", "G.main.0.deconv.bias")]

    rs = [ParamSpec("generator/g_h1/w", (5, 5, 3, 8), "conv_kernel", "generator/g_h1"),
          ParamSpec("generator/g_h1/biases", (3,), "bias", "generator/g_h1")]
    ps = [ParamSpec("G.main.0.deconv.weight", (8, 3, 5, 5), "conv_kernel", "G.main.0.deconv"),
          ParamSpec("G.main.0.deconv.bias", (3,), "bias", "G.main.0.deconv")]
    o = owners_from(M, rs, ps)
    assert o.links == {("generator/g_h1", "G.main.0.deconv")}
