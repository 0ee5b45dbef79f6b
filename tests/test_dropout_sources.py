"""Dropout aligned at the source: every form of dropout a TF1 / Keras program or a torch port writes is
driven from parity's one mask per site and step (element or channel granularity), and an element
dropout against a channel one is a real difference, found at that layer.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.portkit.program import DropoutSite
from parity.program.batches import MASK_PREFIX, add_masks

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def ex(*parts):
    return os.path.join(EX, *parts)


# -- the shared masks (numpy only) ---------------------------------------------------------------------
def test_an_element_site_against_a_channel_site_gets_one_mask_and_a_note():
    batches, notes = [{"x": np.zeros((4, 8, 8, 3))}], []
    add_masks([DropoutSite(0, "drop", (4, 8, 8, 16), 0.3)], [DropoutSite(0, "drop2d", (4, 1, 1, 16), 0.3)],
              batches, np.random.default_rng(0), notes)
    assert batches[0][f"{MASK_PREFIX}0"].shape == (4, 8, 8, 16)
    (note,) = notes
    assert "drop drops single elements" in note and "drop2d drops whole channels" in note and "a different dropout" in note


def test_sites_that_do_not_meet_draw_their_own_and_say_compare_statistically():
    batches, notes = [{"x": np.zeros((4, 3))}], []
    add_masks([DropoutSite(0, "a", (4, 10), 0.5)], [DropoutSite(0, "b", (4, 12), 0.5)], batches, np.random.default_rng(0), notes)
    assert f"{MASK_PREFIX}0" not in batches[0]
    assert "no mask given" in notes[0] and "statistically" in notes[0]


# -- the frameworks -----------------------------------------------------------------------------------
pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.load import capture, load_program  # noqa: E402
from parity.program.prepare import compare_programs  # noqa: E402


def _f64(result):
    return next(c for c in result.comparisons if c.dtype == "float64")


def _mask(result, i=0):
    return result.program_run.batches[0][f"{MASK_PREFIX}{i}"]


def test_tf1_dropout_of_one_minus_a_fed_placeholder_is_driven():
    r = compare_programs(ex("dropout", "tf1_mlp_rate_placeholder.py"), ex("dropout", "torch_mlp_dropout.py"), steps=2,
                         dtypes=("float64",))
    assert not any("site(s)" in n for n in r.notes), r.notes
    assert ("dropout", "F.dropout") in r.mapping.forward
    c = _f64(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    # float64: a faithful port agrees to ~1e-15 relative; 1e-10 is the harness's float64 semantic line
    assert c.worst_rel() < 1e-10
    # the mask is parity's: where it drops, the recorded dropout output is exactly 0 (keep 0.5: not all kept)
    mask = _mask(r)
    assert 0 < mask.mean() < 1
    ref, port = r.case.ports
    tf_fwd = r.traces["float64"][ref].steps[0]["forward"]
    torch_fwd = r.traces["float64"][port].steps[0]["forward"]
    assert np.all(tf_fwd["dropout"][mask == 0] == 0) and np.all(torch_fwd["dropout"][mask == 0] == 0)  # (renamed to the reference's names)
    # where it keeps: the ReLU's output / keep (0.5), exact up to one rounding
    np.testing.assert_allclose(tf_fwd["dropout"][mask == 1], (tf_fwd["Relu"] / 0.5)[mask == 1], rtol=1e-15)


def test_a_torch_bernoulli_dropout_is_driven_by_the_same_mask():
    r = compare_programs(ex("dropout", "tf1_mlp_rate_placeholder.py"), ex("dropout", "torch_mlp_bernoulli.py"), steps=2,
                         dtypes=("float64",))
    c = _f64(r)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # float64 semantic line (see above)


def test_a_hand_written_floor_dropout_is_found_even_on_a_static_shape():
    R = capture(load_program(ex("dropout", "tf1_gcn_sparse_dropout.py")), "float64")
    try:
        batch = next(iter(R.data_source()()))
        R.forward(batch, {})
        sites = R.dropout_sites()
        assert [(s.name, s.shape_channel_last, s.rate) for s in sites] == [("gc1/Floor", (10, 6), 0.5),
                                                                            ("gc2/dropout", (10, 16), 0.5)]
        mask = (np.random.default_rng(0).random((10, 6)) < 0.5).astype(float)
        ones = np.ones((10, 16))
        dropped = R.forward(batch, {0: mask, 1: ones})["gc1/Floor"]
        identity = R.forward(batch, {})["gc1/Floor"]
        # without a mask the hand-written dropout is the identity (x * keep / keep); with one, x * mask / keep
        assert np.allclose(identity, batch["x"], rtol=1e-15, atol=0)  # float64: one multiply and one divide
        assert np.allclose(dropped, batch["x"] * mask / 0.5, rtol=1e-15, atol=0)
    finally:
        R.close()


def test_keras_element_dropout_against_torch_dropout2d_is_a_real_difference_at_that_layer():
    right = compare_programs(ex("dropout", "keras_conv_dropout.py"), ex("dropout", "torch_conv_dropout.py"), steps=2,
                             dtypes=("float64",))
    c = _f64(right)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # float64 semantic line (see above)
    assert ("drop", "drop") in right.mapping.forward
    wrong = compare_programs(ex("dropout", "keras_conv_dropout.py"), ex("dropout", "torch_conv_dropout2d.py"), steps=2,
                             dtypes=("float64",))
    d = _f64(wrong).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and d.describe().split(",")[2].strip().startswith("drop[")
    assert any("drops whole channels" in n for n in wrong.notes)


def test_keras_spatial_dropout_against_torch_dropout2d_agrees_and_against_element_dropout_differs():
    right = compare_programs(ex("dropout", "keras_conv_spatial_dropout.py"), ex("dropout", "torch_conv_dropout2d.py"),
                             steps=2, dtypes=("float64",))
    c = _f64(right)
    assert c.ok, c.first_divergence and c.first_divergence.describe()
    assert c.worst_rel() < 1e-10  # float64 semantic line (see above)
    wrong = compare_programs(ex("dropout", "keras_conv_spatial_dropout.py"), ex("dropout", "torch_conv_dropout.py"),
                             steps=2, dtypes=("float64",))
    d = _f64(wrong).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward") and d.describe().split(",")[2].strip().startswith("drop[")
    assert any("drop drops whole channels [8, 1, 1, 8], drop drops single elements" in n for n in wrong.notes)


def test_torch_channel_dropout_is_driven_per_channel():
    P = capture(load_program(ex("dropout", "torch_conv_dropout2d.py")), "float64")
    try:
        batch = {"x": np.random.default_rng(1).normal(size=(2, 8, 8, 3)), "y": np.eye(4)[[0, 1]]}
        P.forward(batch, {})
        (site,) = P.dropout_sites()
        assert site.shape_channel_last == (2, 1, 1, 8)
        mask = np.zeros((2, 1, 1, 8))
        mask[:, :, :, ::2] = 1.0
        out = P.forward(batch, {0: mask})
        relu, drop = out["F.relu"], out["drop"]
        assert np.all(drop[..., 1::2] == 0)
        assert np.allclose(drop[..., ::2], relu[..., ::2] / 0.7, rtol=1e-15, atol=0)  # float64: one division
    finally:
        P.close()


def test_torch_alpha_dropout_is_named_as_not_driven():
    import torch

    from torch_impl.capture.dropout import undriven

    note = undriven(torch.nn.functional.alpha_dropout, torch)
    assert "not driven" in note and "statistically" in note
    assert undriven(torch.nn.functional.dropout2d, torch) is None  # driven now
