"""Random noise aligned at the source: a normal or uniform draw in a TF1 / Keras program (a VAE's
``eps``) and its torch port's (``torch.randn_like``...) get the same numbers from one shared stream per
site (the reference's draws are the stream), paired in call order by kind and shape; a draw parity
cannot drive is named in a note, never silent.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.portkit.program import DropoutSite
from parity.program.batches import MASK_PREFIX, NOISE_BASE, add_masks, noise_kind

EX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "noise")
NORMAL, UNIFORM, UNDRIVEN = NOISE_BASE["normal"], NOISE_BASE["uniform"], NOISE_BASE["undriven"]


# -- the shared draws (numpy only) ---------------------------------------------------------------------
def test_the_adapters_number_noise_sites_as_the_batches_do():
    from tf_impl.v1.capture import noise as v1
    from tf_impl.v2.capture import noise as v2
    from torch_impl.capture import noise as pt

    assert v1.NOISE_BASE == v2.NOISE_BASE == pt.NOISE_BASE == NOISE_BASE
    assert [noise_kind(i) for i in (0, 7, NORMAL, NORMAL + 3, UNIFORM + 1, UNDRIVEN)] == [None, None, "normal", "normal",
                                                                                          "uniform", "undriven"]


def test_paired_draws_share_one_stream_and_dropout_masks_are_unchanged():
    drop = DropoutSite(0, "drop", (4, 5), 0.5)
    ref = [drop, DropoutSite(NORMAL, "eps", (4, 3), 0.0), DropoutSite(UNIFORM, "u", (4, 2), 0.0)]
    port = [DropoutSite(NORMAL, "randn_like", (4, 3), 0.0), drop, DropoutSite(UNIFORM, "rand", (4, 2), 0.0)]
    batches, notes = [{"x": np.zeros((4, 9))}, {"x": np.zeros((6, 9))}], []
    add_masks(ref, port, batches, np.random.default_rng(0), notes)
    assert notes == []
    eps0, eps1 = batches[0][f"{MASK_PREFIX}{NORMAL}"], batches[1][f"{MASK_PREFIX}{NORMAL}"]
    assert eps0.shape == (4, 3) and eps1.shape == (6, 3)  # the batch dimension follows each batch
    u = batches[1][f"{MASK_PREFIX}{UNIFORM}"]
    assert u.shape == (6, 2) and (u >= 0).all() and (u < 1).all()
    assert set(np.unique(batches[0][f"{MASK_PREFIX}0"])) <= {0.0, 1.0}
    # the dropout masks are drawn first, as before noise sites existed: the same mask for the same seed
    only_dropout = [{"x": np.zeros((4, 9))}, {"x": np.zeros((6, 9))}]
    add_masks([drop], [drop], only_dropout, np.random.default_rng(0), [])
    assert np.array_equal(only_dropout[0][f"{MASK_PREFIX}0"], batches[0][f"{MASK_PREFIX}0"])


def test_unpaired_or_misshapen_or_undriven_draws_are_named_in_notes():
    ref = [DropoutSite(NORMAL, "RandomStandardNormal at vae.py:12", (4, 3), 0.0),
           DropoutSite(NORMAL + 1, "RandomStandardNormal at vae.py:20", (4, 3), 0.0),
           DropoutSite(UNDRIVEN, "TruncatedNormal at vae.py:30 (...)", (), 0.0)]
    port = [DropoutSite(NORMAL, "torch.randn_like at port.py:9", (4, 5), 0.0),
            DropoutSite(UNIFORM, "torch.rand at port.py:11", (4, 3), 0.0)]
    batches, notes = [{"x": np.zeros((4, 9))}], []
    add_masks(ref, port, batches, np.random.default_rng(0), notes)
    assert not any(k.startswith(MASK_PREFIX) for k in batches[0])
    text = "\n".join(notes)
    assert "reference: not driven: TruncatedNormal at vae.py:30" in text
    assert "not driven: normal draw RandomStandardNormal at vae.py:12 [4, 3] (reference) vs torch.randn_like at port.py:9 [4, 5]" in text
    assert "not driven: normal draw RandomStandardNormal at vae.py:20 (reference) has no normal draw" in text
    assert "not driven: uniform draw torch.rand at port.py:11 (port) has no uniform draw" in text
    assert all("expect a difference from step 0" in n for n in notes if "TruncatedNormal" not in n)


# -- the frameworks -----------------------------------------------------------------------------------
torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from parity.program.load import capture, load_program  # noqa: E402
from parity.program.prepare import compare_programs  # noqa: E402


def _result(result, dtype="float64"):
    return next(c for c in result.comparisons if c.dtype == dtype)


def test_a_torch_randn_like_takes_parity_draw_and_draws_its_own_without_one():
    P = capture(load_program(os.path.join(EX, "torch_vae.py")), "float64")
    try:
        x = np.random.default_rng(3).normal(size=(4, 12))
        batch = {"x": x, "y": x}
        P.forward(batch, {})
        (site,) = P.dropout_sites()
        assert site.index == NORMAL and site.shape_channel_last == (4, 3)
        assert site.name.startswith("torch.randn_like at torch_vae.py:")
        eps = np.random.default_rng(4).normal(size=(4, 3))
        a, b = P.forward(batch, {NORMAL: eps}), P.forward(batch, {NORMAL: eps})
        assert np.array_equal(a["dec"], b["dec"])  # parity's draw: the same output twice
        own1, own2 = P.forward(batch, {}), P.forward(batch, {})
        assert not np.array_equal(own1["dec"], own2["dec"])  # no draw given: torch's own, different each time
    finally:
        P.close()


def test_torch_random_functions_parity_cannot_drive_are_named_at_the_users_line():
    from torch_impl.capture import noise

    note = noise.undriven(torch.randperm, torch)
    assert note.startswith("not driven: torch.randperm at test_noise_sources.py:") and "expect a difference" in note
    assert noise.undriven(torch.relu, torch) is None


@pytest.mark.slow
def test_keras_vae_and_its_torch_port_agree_and_a_wrong_std_diverges_at_step_0_forward():
    r = compare_programs(os.path.join(EX, "keras_vae.py"), os.path.join(EX, "torch_vae.py"), steps=3)
    for dtype in ("float64", "float32"):
        c = _result(r, dtype)
        assert c.ok, c.first_divergence and c.first_divergence.describe()
    # float64: measured 5e-16 relative (rounding); 1e-10 is the harness's float64 semantic line
    assert _result(r).worst_rel() < 1e-10
    assert not any("not driven" in n for n in r.notes), r.notes
    assert f"{MASK_PREFIX}{NORMAL}" in r.program_run.batches[0]
    wrong = compare_programs(os.path.join(EX, "keras_vae.py"), os.path.join(EX, "torch_vae_wrong_std.py"), steps=2,
                             dtypes=("float64",))
    d = _result(wrong).first_divergence
    assert d is not None and (d.step, d.stage) == (0, "forward"), d and d.describe()


@pytest.mark.slow
def test_tf1_and_keras3_vaes_agree_with_the_torch_port_in_float64():
    for ref in ("tf1_vae.py", "keras3_vae.py"):
        r = compare_programs(os.path.join(EX, ref), os.path.join(EX, "torch_vae.py"), steps=2, dtypes=("float64",))
        c = _result(r)
        assert c.ok, (ref, c.first_divergence and c.first_divergence.describe())
        assert c.worst_rel() < 1e-10  # measured 5e-16 (TF1), 3e-16 (Keras 3): rounding; 1e-10 the float64 semantic line
        assert not any("not driven" in n for n in r.notes), (ref, r.notes)


def test_without_noise_driving_the_vae_pair_could_not_agree():
    # the check above can fail: two programs drawing their own eps differ at the first forward
    R = capture(load_program(os.path.join(EX, "tf1_vae.py")), "float64")
    try:
        x = np.random.default_rng(3).normal(size=(4, 12))
        R.forward({"x": x, "y": x}, {})
        (site,) = R.dropout_sites()
        assert site.index == NORMAL and site.shape_channel_last == (4, 3) and "tf1_vae.py:" in site.name
        eps = np.random.default_rng(4).normal(size=(4, 3))
        a, b = R.forward({"x": x}, {NORMAL: eps}), R.forward({"x": x}, {NORMAL: eps})
        own = R.forward({"x": x}, {})
        assert np.array_equal(a["dec/add"], b["dec/add"]) and not np.array_equal(a["dec/add"], own["dec/add"])
    finally:
        R.close()
