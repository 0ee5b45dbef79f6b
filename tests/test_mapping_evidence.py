"""Same-shape variables the probe forward cannot tell apart: paired by names, else by order when both sides
create them in call order and the probe does not refute it; else the run stops. A conv bias is not a
BatchNorm beta (their own kinds, one group each). Corpus pairs 01 (Zaremba LSTM) and 05 (ResNet20)."""

import pytest

from parity.portkit.program import ParamSpec
from parity.program.mapping import AmbiguousMapping, auto_map
from parity.program.mapping.evidence import call_ordered, name_pick, tokens


def _spec(name, shape, kind, layer, trainable=True):
    return ParamSpec(name, shape, kind, layer, trainable)


def _pairs(m):
    return {e.reference: e.port for e in m.params}


def _flat(score_value, calls=None):
    def score(m):
        return score_value  # the probe agrees equally under every pairing: it cannot decide
    if calls is not None:
        score.calls = lambda: calls
    return score


# -- names ---------------------------------------------------------------------------------------------------
def test_tokens_split_on_separators_and_keep_digits():
    assert tokens("Model/RNN/Layer_0/w_i") == ["model", "rnn", "layer", "0", "w", "i"]
    assert tokens("rnn.Layer_0.w_i") == ["rnn", "layer", "0", "w", "i"]
    assert tokens("fc1.weight") == ["fc1", "kernel"]


def test_names_that_share_only_digits_or_the_leaf_do_not_decide():
    assert name_pick(["conv2d_1/kernel", "conv2d_2/kernel"], ["layer1.0.conv1.weight", "layer1.0.conv2.weight"]) is None
    assert name_pick(["dense_1/kernel", "dense_2/kernel"], ["l.1.weight", "l.2.weight"]) is None


def test_names_decide_beyond_the_pairings_tried_and_the_note_prints_them():
    # corpus 01: 5 same-shape kernels (120 pairings, more than are tried); the port created them in another order
    names = [f"Layer_{k}/w_i" for k in range(5)]
    ref = [_spec(f"Model/RNN/{n}", (8, 8), "dense_kernel", "Model/RNN/" + n.split("/")[0]) for n in names]
    port = [_spec("rnn." + n.replace("/", "."), (8, 8), "dense_kernel", "rnn." + n.split("/")[0]) for n in reversed(names)]
    m = auto_map(ref, "tf1", port, "torch", score=_flat(2))
    assert _pairs(m) == {f"Model/RNN/Layer_{k}/w_i": f"rnn.Layer_{k}.w_i" for k in range(5)}
    assert any("paired by their names" in n and "Model/RNN/Layer_0/w_i -> rnn.Layer_0.w_i" in n for n in m.notes)


# -- order ---------------------------------------------------------------------------------------------------
def _convs(n):
    ref = [_spec(f"conv2d_{k}/kernel", (3, 3, 4, 4), "conv_kernel", f"conv2d_{k}") for k in range(n)]
    port = [_spec(f"layer{k}.conv.weight", (4, 4, 3, 3), "conv_kernel", f"layer{k}.conv") for k in range(n)]
    return ref, port


def test_order_decides_when_both_sides_create_in_call_order_and_the_probe_cannot_refute():
    ref, port = _convs(5)
    calls = ([f"conv2d_{k}" for k in range(5)], [f"layer{k}.conv" for k in range(5)])
    m = auto_map(ref, "tf2", port, "torch", score=_flat(3, calls))
    assert _pairs(m) == {f"conv2d_{k}/kernel": f"layer{k}.conv.weight" for k in range(5)}
    assert any("in order (created in call order on both sides)" in n and "no better under any of 10 swaps" in n
               for n in m.notes)


def test_order_refuted_by_the_probe_stops():
    # a swap of convs 0 and 1 agrees better than the order (4 vs 3), but equally with the rest of the
    # pairings: neither the probe nor the order decides
    ref, port = _convs(5)
    calls = ([f"conv2d_{k}" for k in range(5)], [f"layer{k}.conv" for k in range(5)])

    def score(m):
        return 4 if _pairs(m)["conv2d_0/kernel"] == "layer1.conv.weight" else 3
    score.calls = lambda: calls
    with pytest.raises(AmbiguousMapping, match="agrees equally under several pairings"):
        auto_map(ref, "tf2", port, "torch", score=score)


def test_creation_order_unlike_call_order_stops():
    ref, port = _convs(5)
    calls = ([f"conv2d_{k}" for k in (1, 0, 2, 3, 4)], [f"layer{k}.conv" for k in range(5)])
    with pytest.raises(AmbiguousMapping, match="agrees equally under several pairings"):
        auto_map(ref, "tf2", port, "torch", score=_flat(3, calls))


def test_order_needs_the_probe_to_agree():
    ref, port = _convs(3)
    calls = ([f"conv2d_{k}" for k in range(3)], [f"layer{k}.conv" for k in range(3)])
    with pytest.raises(AmbiguousMapping):
        auto_map(ref, "tf2", port, "torch", score=_flat(0, calls))
    with pytest.raises(AmbiguousMapping, match="no probe forward"):
        auto_map(ref, "tf2", port, "torch")


def test_call_ordered_needs_one_called_layer_per_variable():
    assert call_ordered(["a", "b"], ["x", "a", "b/relu"])
    assert not call_ordered(["b", "a"], ["a", "b"])
    assert not call_ordered(["a", "a"], ["a"])  # one layer's two variables: calls cannot order them
    assert not call_ordered(["a", "c"], ["a", "b"])


# -- BatchNorm beta ------------------------------------------------------------------------------------------
def test_a_conv_bias_and_a_batchnorm_beta_of_one_width_are_two_groups():
    ref = [_spec("conv2d/bias", (16,), "bias", "conv2d"), _spec("batch_normalization/beta", (16,), "bn_beta", "batch_normalization")]
    port = [_spec("bn1.bias", (16,), "bn_beta", "bn1"), _spec("conv1.bias", (16,), "bias", "conv1")]
    m = auto_map(ref, "tf2", port, "torch")  # no probe: the kinds alone decide
    assert _pairs(m) == {"conv2d/bias": "conv1.bias", "batch_normalization/beta": "bn1.bias"}


def test_missing_conv_biases_are_blamed_not_the_batchnorm_betas():
    # corpus 05: the port has no conv biases; the refusal names the reference's conv biases
    ref = [_spec("conv2d/bias", (16,), "bias", "conv2d"), _spec("batch_normalization/beta", (16,), "bn_beta", "batch_normalization")]
    port = [_spec("bn1.bias", (16,), "bn_beta", "bn1")]
    with pytest.raises(AmbiguousMapping) as e:
        auto_map(ref, "tf2", port, "torch")
    assert "conv2d/bias [16] has no partner" in str(e.value) and "bn1.bias [16] has no partner" not in str(e.value)


def test_a_hand_made_batchnorm_offset_still_pairs_with_a_beta():
    # a TF1 tf.nn.batch_normalization offset read by an add is kind "bias": compatible with bn_beta
    ref = [_spec("bn/offset", (16,), "bias", "bn")]
    port = [_spec("bn.bias", (16,), "bn_beta", "bn")]
    assert _pairs(auto_map(ref, "tf1", port, "torch")) == {"bn/offset": "bn.bias"}


def test_every_side_gives_batchnorm_beta_its_own_kind():
    torch = pytest.importorskip("torch")
    from torch_impl.capture.analyse import param_kind
    assert param_kind(torch.nn.BatchNorm2d(4), "bias", torch) == "bn_beta"
    assert param_kind(torch.nn.Conv2d(2, 4, 3), "bias", torch) == "bias"
    from tf_impl.v2.capture.analyse import weight_kind

    class BatchNormalization:  # the kind goes by the layer's class name
        pass
    assert weight_kind(BatchNormalization(), "beta") == "bn_beta"
