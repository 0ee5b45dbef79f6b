"""Traces round-trip through .npz + JSON manifest, and bad files are one-line errors."""

import numpy as np
import pytest

from parity import ParityError, Trace, load, save


def _trace():
    t = Trace(manifest={"case": "c", "port": "torch", "framework": "torch", "dtype": "float64", "seed": 0})
    t.initial = {"layer/kernel": np.arange(6.0).reshape(2, 3)}
    t.add_step({"loss": {"loss": np.float64(1.5)}, "gradients": {"layer/kernel": np.ones((2, 3))}})
    t.add_step({"loss": {"loss": np.float64(0.5)}, "state": {"global_step": np.int64(2)}})
    return t


def test_round_trip(tmp_path):
    path = save(_trace(), tmp_path / "t")
    assert path.endswith(".npz")
    back = load(path)
    assert back.manifest["case"] == "c" and back.manifest["steps"] == 2
    assert back.manifest["stages"] == ["loss", "gradients", "state"]
    np.testing.assert_array_equal(back.initial["layer/kernel"], np.arange(6.0).reshape(2, 3))
    assert back.get(1, "state", "global_step") == 2
    assert back.steps[0]["gradients"]["layer/kernel"].shape == (2, 3)


def test_loads_without_pickle(tmp_path):
    path = save(_trace(), tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as npz:  # the manifest is text, not an object
        assert "__manifest__.json" in npz.files


def test_unknown_stage_is_refused():
    with pytest.raises(ParityError, match="unknown stage"):
        _trace().add_step({"outputs": {}})


@pytest.mark.parametrize(
    "content, message",
    [(b"not a zip", "not a readable trace"), (b"", "not a readable trace")],
)
def test_corrupt_file(tmp_path, content, message):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(ParityError, match=message):
        load(bad)


def test_npz_without_manifest(tmp_path):
    np.savez(tmp_path / "plain.npz", x=np.ones(2))
    with pytest.raises(ParityError, match="no manifest"):
        load(tmp_path / "plain.npz")


def test_missing_file(tmp_path):
    with pytest.raises(ParityError, match="does not exist"):
        load(tmp_path / "nope.npz")


def test_missing_tensor_is_named():
    with pytest.raises(ParityError, match="no loss 'nope' at step 0"):
        _trace().get(0, "loss", "nope")
