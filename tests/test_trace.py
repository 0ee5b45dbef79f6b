"""Traces: files written step by step (format 2), read lazily, a readable prefix after a crash;
format 1 (.npz) still read; windows keep what the diagnosis needs and say what they dropped."""

import json

import numpy as np
import pytest

from parity import ParityError, Trace, load, save
from parity.trace.summary import Summary
from parity.trace.memory import SMALL, OutsideWindow, Window, WindowRecorder
from parity.trace.file import MAGIC, TraceReader, TraceWriter


def _trace():
    t = Trace(manifest={"case": "c", "port": "torch", "framework": "torch", "dtype": "float64", "seed": 0})
    t.initial = {"layer/kernel": np.arange(6.0).reshape(2, 3)}
    t.add_step({"loss": {"loss": np.float64(1.5)}, "gradients": {"layer/kernel": np.ones((2, 3))}})
    t.add_step({"loss": {"loss": np.float64(0.5)}, "state": {"global_step": np.int64(2)}})
    return t


def test_round_trip(tmp_path):
    path = save(_trace(), tmp_path / "t")
    assert path.endswith(".trace")
    with open(path, "rb") as fh:
        assert fh.read(len(MAGIC)) == MAGIC
    back = load(path)
    assert back.manifest["case"] == "c" and back.manifest["steps"] == 2 and back.interrupted is None
    assert back.manifest["stages"] == ["loss", "gradients", "state"]
    np.testing.assert_array_equal(back.initial["layer/kernel"], np.arange(6.0).reshape(2, 3))
    assert back.get(1, "state", "global_step") == 2 and back.steps[1]["state"]["global_step"].dtype == np.int64
    assert back.steps[0]["gradients"]["layer/kernel"].shape == (2, 3)


def test_tensor_order_is_kept(tmp_path):
    # Forward activations are compared in recording order (the first diverging layer is the
    # cause); safetensors sorts its entries, the record keeps the order.
    t = Trace(manifest={"case": "c", "port": "p", "dtype": "float64"})
    names = ["z_first", "a_second", "m_third"]
    t.add_step({"forward": {n: np.ones(3) * i for i, n in enumerate(names)}})
    assert list(load(save(t, tmp_path / "o.trace")).steps[0]["forward"]) == names


def test_interrupted_write_leaves_a_readable_prefix(tmp_path):
    path = tmp_path / "cut.trace"
    with pytest.raises(KeyboardInterrupt):
        with TraceWriter(path, {"case": "c", "port": "p", "dtype": "float64"}) as w:
            w.initial({"w": np.zeros(3)})
            for i in range(5):
                w.step({"loss": {"loss": np.float64(i)}, "parameters": {"w": np.full(3, float(i))}})
                if i == 2:
                    raise KeyboardInterrupt
    back = load(path)
    assert back.interrupted == 3 and len(back.steps) == 3
    assert back.manifest["interrupted"] == "interrupted after 3 steps"
    # A cut anywhere inside the last record (a crash mid-write) loses that record only.
    raw = path.read_bytes()
    for cut in (len(raw) - 1, len(raw) - 7, len(raw) - 40):
        (tmp_path / "c2.trace").write_bytes(raw[:cut])
        again = load(tmp_path / "c2.trace")
        assert again.interrupted == 2 and float(again.steps[1]["loss"]["loss"]) == 1.0


def test_reader_streams_steps(tmp_path):
    path = save(_trace(), tmp_path / "s.trace")
    reader = TraceReader(path)
    assert reader.manifest["port"] == "torch" and "layer/kernel" in reader.initial
    it = reader.steps()
    assert float(next(it)["loss"]["loss"]) == 1.5
    assert int(next(it)["state"]["global_step"]) == 2
    assert next(it, None) is None and reader.interrupted is None


def test_summary_mode_keeps_statistics_and_small_tensors(tmp_path):
    t = Trace(manifest={"case": "c", "port": "p", "dtype": "float32"})
    big = np.linspace(-1, 1, 10000, dtype=np.float32).reshape(100, 100)
    t.add_step({"loss": {"loss": np.float32(0.25)}, "parameters": {"w": big, "b": np.ones(SMALL, np.float32)}})
    full, summ = save(t, tmp_path / "f.trace"), save(t, tmp_path / "s.trace", summary=True)
    back = load(summ)
    w = back.steps[0]["parameters"]["w"]
    assert isinstance(w, Summary) and w.shape == (100, 100) and w.dtype == "float32"
    assert w.stats[1] == -1.0 and w.stats[2] == 1.0  # min and max are exact
    assert isinstance(back.steps[0]["parameters"]["b"], np.ndarray)  # <= SMALL elements: in full
    assert float(back.steps[0]["loss"]["loss"]) == 0.25
    assert (tmp_path / "s.trace").stat().st_size < (tmp_path / "f.trace").stat().st_size / 20  # 40 kB of float32 vs ~1 kB of statistics + manifest
    assert json.loads(json.dumps(back.manifest))["summary"] is True
    assert full != summ


def test_format_1_npz_is_still_read(tmp_path):
    manifest = {"case": "c", "port": "tf1", "dtype": "float64", "format": 1, "steps": 1}
    np.savez(tmp_path / "old.npz", **{"__manifest__.json": np.array(json.dumps(manifest)), "initial/parameters/w": np.ones(2),
                                      "0/loss/loss": np.array(2.0)})
    back = load(tmp_path / "old.npz")
    assert back.port == "tf1" and float(back.steps[0]["loss"]["loss"]) == 2.0 and back.initial["w"].shape == (2,)


def test_unknown_stage_is_refused():
    with pytest.raises(ParityError, match="unknown stage"):
        _trace().add_step({"outputs": {}})


@pytest.mark.parametrize("content", [b"not a zip", b"", MAGIC[:5]])
def test_corrupt_file(tmp_path, content):
    bad = tmp_path / "bad.trace"
    bad.write_bytes(content)
    with pytest.raises(ParityError, match="not a readable trace|no manifest"):
        load(bad)


def test_bit_flip_is_a_checksum_error(tmp_path):
    path = save(_trace(), tmp_path / "t.trace")
    raw = bytearray(open(path, "rb").read())
    raw[len(raw) // 2] ^= 0x10
    open(path, "wb").write(bytes(raw))
    with pytest.raises(ParityError, match="checksum mismatch|corrupt|unreadable"):
        load(path)


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


def _window(n, diverge_at=None, before=2, after=2):
    w = Window({"case": "c", "port": "p", "dtype": "float64"}, {"w": np.zeros(100)})
    rec = WindowRecorder(w, before=before, after=after)
    for i in range(n):
        rec.add({"loss": {"loss": np.array(float(i))}, "parameters": {"w": np.full(100, float(i))}})
        if i == diverge_at:
            rec.keep_around(i)
    return w


def test_window_keeps_the_steps_around_a_divergence_and_the_last():
    w = _window(30, diverge_at=10)
    assert w.kept_steps == [8, 9, 10, 11, 12, 27, 28, 29]
    assert len(w.steps) == 30 and w.initial["w"].shape == (100,)
    assert float(w.steps[9]["parameters"]["w"][0]) == 9.0
    # scalars of every step are kept
    assert [float(s["loss"]["loss"]) for s in w.steps] == list(range(30))


def test_window_outside_is_a_clear_error_not_a_value():
    w = _window(30, diverge_at=10)
    stage = w.steps[3]["parameters"]
    assert "w" in stage and list(stage) == ["w"]
    with pytest.raises(OutsideWindow, match="step 3.*outside the kept window"):
        stage["w"]
    with pytest.raises(OutsideWindow):
        stage.get("w")  # never a silent None
    with pytest.raises(IndexError):  # the diagnosis treats it as "no evidence"
        w.get(3, "parameters", "w")
    with pytest.raises(KeyError):
        stage["nope"]
    with pytest.raises(IndexError):
        w.steps[30]


def test_window_release_keeps_scalars():
    w = _window(10, diverge_at=4)
    w.release()
    assert w.kept_steps == [] and w.initial == {}
    assert float(w.steps[4]["loss"]["loss"]) == 4.0
