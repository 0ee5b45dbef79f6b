"""Device statistics wired into recording (issue 21, item 1): a summary recording of a torch port summarizes each
big tensor where it lives (parity.run.device -> torch_impl.trace.stats), never copying it to the host first.

On the CPU the summary is computed on a view of the tensor's memory: the same bytes the host copy holds, so
the trace is identical, record for record, to one written from host copies. On CUDA (``gpu``: skipped here
when no device is lent) the statistics are torch's on the device and the checksum a device hash.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.torch]
pytest.importorskip("torch")

from parity.cases.catalog import realsize  # noqa: E402
from parity.trace.summary import Summary, summarize  # noqa: E402

#: a 2-layer transformer (the realsize_transformer's port: it hands parity torch tensors, not numpy copies)
SMALL = realsize.transformer_case("device_stats_transformer", "2-layer transformer, d 32", vocab=64, seq=8,
                                  d_model=32, heads=2, ff=48, layers=2, batch=4, steps=2, tags=())
U64 = 2.0**-53


def _records(path):
    from parity.trace.file import TraceReader

    r = TraceReader(path)
    return r.manifest, r.initial, list(r.steps())


def _same(a, b) -> bool:
    if isinstance(a, Summary) or isinstance(b, Summary):
        return (isinstance(a, Summary) and isinstance(b, Summary) and a.shape == b.shape and a.dtype == b.dtype
                and np.array_equal(a.stats, b.stats, equal_nan=True) and np.array_equal(a.samples, b.samples)
                and a.checksum == b.checksum)
    return np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype


def test_summary_recording_summarizes_torch_tensors_in_place_identically(tmp_path, monkeypatch):
    from parity.run import boundary, device
    from parity.run.runner import record_port

    calls = []
    real = device.device_summaries

    def spy(tensors):
        calls.append(len(tensors))
        return real(tensors)

    monkeypatch.setattr(boundary, "device_summaries", spy)
    wired, host = str(tmp_path / "wired.trace"), str(tmp_path / "host.trace")
    record_port(SMALL, "torch", "float32", wired, isolate=False, summary=True)
    assert calls and sum(calls) >= 2 * 20, calls  # every step's big tensors went the device path
    monkeypatch.setattr(boundary, "summarized_in_place", lambda v: False)  # the host path: every tensor copied
    record_port(SMALL, "torch", "float32", host, isolate=False, summary=True)
    (ma, ia, sa), (mb, ib, sb) = _records(wired), _records(host)
    assert ma == mb and ia.keys() == ib.keys()
    assert len(sa) == len(sb) == SMALL.steps
    summarized = 0
    for a, b in zip(sa, sb):
        assert a.keys() == b.keys()
        for stage in a:
            assert list(a[stage]) == list(b[stage]), stage  # the port's order kept
            for name in a[stage]:
                assert _same(a[stage][name], b[stage][name]), (stage, name)
                summarized += isinstance(a[stage][name], Summary)
    assert summarized >= 40


def test_to_stages_summary_matches_the_host_copy_for_every_kind_of_tensor():
    import torch

    from parity.run.boundary import to_array, to_stages

    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 30, generator=g, dtype=torch.float64, requires_grad=True)
    out = {"parameters": {"w": w, "wt": w.t(), "f32": torch.randn(50, generator=g), "small": torch.randn(4, generator=g),
                          "ints": torch.arange(100), "np": np.arange(50.0)}}
    got = to_stages(out, "torch", "step 0", SMALL, summary=True)["parameters"]
    assert list(got) == list(out["parameters"])
    for name in ("w", "wt", "f32"):  # big floating tensors: summarized, as the trace writer summarizes the copy
        assert isinstance(got[name], Summary), name
        assert _same(got[name], summarize(to_array(out["parameters"][name], "torch", name))), name
    for name in ("small", "ints", "np"):  # small, integer or numpy: copied as before
        assert isinstance(got[name], np.ndarray), name
    plain = to_stages(out, "torch", "step 0", SMALL)["parameters"]
    assert all(isinstance(v, np.ndarray) for v in plain.values())  # not a summary recording: full copies


@pytest.mark.gpu
def test_summary_recording_on_cuda_summarizes_on_the_device(tmp_path, monkeypatch):
    import torch

    from parity.run.boundary import to_array, to_stages

    g = torch.Generator(device="cuda").manual_seed(0)
    out = {"gradients": {f"t{i}": torch.randn(1000 + 37 * i, generator=g, device="cuda") for i in range(8)}}
    got = to_stages(out, "torch", "step 0", SMALL, summary=True)["gradients"]
    for name, x in out["gradients"].items():
        s, want = got[name], summarize(to_array(x, "torch", name))
        assert s.checksum < 0, name  # the device hash: computed there
        assert np.array_equal(s.stats[1:3], want.stats[1:3]) and np.array_equal(s.samples, want.samples), name
        n = x.numel()
        # float64 sums of the same terms in another order: at most 2 n u of the sum of magnitudes apart
        assert abs(s.stats[0] - want.stats[0]) <= 2 * n * U64 * want.stats[0], name
    monkeypatch.setenv("PARITY_TORCH_DEVICE", "cuda")
    from parity.run.runner import record_port

    path = str(tmp_path / "cuda.trace")
    record_port(SMALL, "torch", "float32", path, isolate=False, summary=True)
    manifest, _, steps = _records(path)
    assert "cuda" in str(manifest.get("device"))
    assert any(isinstance(v, Summary) and v.checksum < 0 for s in steps for arrays in s.values() for v in arrays.values())
