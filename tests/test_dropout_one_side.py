"""A dropout only one program has is a real difference: in the training steps it drops, with a mask parity
draws for it (its own rate and granularity), so the comparison diverges from step 0 as the programs would;
never the identity (a silent agree; corpus pair 06, a port-only ``nn.Dropout2d``). Only a deterministic
probe (``unpaired=False``) leaves it the identity. A pair of sites whose shapes cannot meet gets one mask
per side. Paired sites keep their masks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.portkit.program import DropoutSite
from parity.program.batches import MASK_PREFIX, OWN_MASK, add_masks

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "dropout")


def _keys(batch):
    return sorted(int(k[len(MASK_PREFIX):]) for k in batch if k.startswith(MASK_PREFIX))


# -- the masks (numpy only) ----------------------------------------------------------------------------------
def test_a_port_only_site_gets_a_mask_of_its_own_rate_and_granularity_and_a_true_note():
    paired = DropoutSite(0, "drop", (4, 10), 0.5)
    channel = DropoutSite(1, "drop2d", (4, 1, 1, 64), 0.25)  # [N, 1, 1, C]: a channel dropout
    batches, notes = [{"x": np.zeros((4, 3))} for _ in range(3)], []
    add_masks([paired], [paired, channel], batches, np.random.default_rng(0), notes)
    for b in batches:
        assert _keys(b) == [0, 1]
        assert b[f"{MASK_PREFIX}1"].shape == (4, 1, 1, 64)  # whole channels, as the site drops
    kept = np.mean([b[f"{MASK_PREFIX}1"].mean() for b in batches])
    assert 0.5 < kept < 0.95  # its own keep 0.75 (192 draws: 0.75 +- 4 sd is 0.63..0.87), not the pair's 0.5
    (note,) = notes
    assert "drop2d (port, rate 0.25, channels)" in note and "differ from step 0" in note
    assert "draw their own" not in note


def test_paired_masks_are_unchanged_by_a_site_without_partner():
    paired = DropoutSite(0, "drop", (4, 10), 0.5)
    alone, with_extra = [{"x": np.zeros((4, 3))}], [{"x": np.zeros((4, 3))}]
    add_masks([paired], [paired], alone, np.random.default_rng(7), [])
    add_masks([paired], [paired, DropoutSite(1, "extra", (4, 10), 0.5)], with_extra, np.random.default_rng(7), [])
    assert np.array_equal(alone[0][f"{MASK_PREFIX}0"], with_extra[0][f"{MASK_PREFIX}0"])


def test_a_reference_only_site_drops_too():
    batches, notes = [{"x": np.zeros((8, 3))}], []
    add_masks([DropoutSite(0, "dropout", (8, 32), 0.5)], [], batches, np.random.default_rng(0), notes)
    assert batches[0][f"{MASK_PREFIX}0"].shape == (8, 32) and 0 < batches[0][f"{MASK_PREFIX}0"].mean() < 1
    assert "dropout (reference, rate 0.5, elements)" in notes[0]


def test_a_deterministic_probe_leaves_an_unpaired_site_the_identity_and_says_so():
    batches, notes = [{"x": np.zeros((4, 3))}], []
    add_masks([], [DropoutSite(0, "d", (4, 10), 0.5)], batches, np.random.default_rng(0), notes, unpaired=False)
    assert _keys(batches[0]) == []
    assert "the identity in this probe" in notes[0]


def test_sites_whose_shapes_cannot_meet_get_a_mask_each():
    batches, notes = [{"x": np.zeros((4, 3))}], []
    add_masks([DropoutSite(0, "a", (4, 10), 0.5)], [DropoutSite(0, "b", (4, 12), 0.5)], batches, np.random.default_rng(0), notes)
    assert batches[0][f"{MASK_PREFIX}{OWN_MASK['reference']}"].shape == (4, 10)
    assert batches[0][f"{MASK_PREFIX}{OWN_MASK['port']}"].shape == (4, 12)
    assert "each drops with a mask of its own shape" in notes[0]


def test_each_adapter_takes_the_mask_that_fits_its_site_and_holds_the_same_numbers():
    torch_dropout = pytest.importorskip("torch_impl.capture.dropout")
    pytest.importorskip("tensorflow")
    from tf_impl.v1.capture import dropout as v1
    from tf_impl.v2.capture import dropout as v2

    masks = {OWN_MASK["reference"]: np.ones((4, 10)), OWN_MASK["port"]: np.zeros((4, 12))}
    for mod in (torch_dropout, v1, v2):
        assert mod.OWN_MASK == OWN_MASK
        assert mod.site_mask(masks, 0, (4, 10)).shape == (4, 10)
        assert mod.site_mask(masks, 0, (4, 12)).shape == (4, 12)
        assert mod.site_mask({}, 0, (4, 12)) is None  # no mask: the identity (a deterministic probe)
        assert mod.site_mask({0: np.ones((4, 1, 1, 3))}, 0, (4, 5, 5, 3)).shape == (4, 1, 1, 3)  # a channel mask: shared


# -- the programs ----------------------------------------------------------------------------------------------
pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.prepare import compare_programs  # noqa: E402


def _f64(result):
    return next(c for c in result.comparisons if c.dtype == "float64")


@pytest.mark.parametrize("reference, port", [("tf1_mlp_no_dropout.py", "torch_mlp_dropout.py"),
                                             ("tf1_mlp_rate_placeholder.py", "torch_mlp_no_dropout.py"),
                                             ("tf1_mlp_input_dropout.py", "torch_mlp_dropout.py")])
def test_a_dropout_only_one_program_has_diverges_at_step_0(reference, port):
    r = compare_programs(os.path.join(EX, reference), os.path.join(EX, port), steps=2, dtypes=("float64",))
    c = _f64(r)
    assert not c.ok, "a dropout only one side has must not agree"
    assert c.first_divergence.step == 0 and c.first_divergence.stage in ("forward", "loss"), c.first_divergence.describe()
    why = ("without a partner", "differ from step 0") if "input" not in reference else ("each drops with a mask of its own shape",)
    assert any(all(w in n for w in why) for n in r.notes), r.notes
