"""``parity record PROG.py`` + ``parity compare``: a program recorded on one machine, its port on another, compared
anywhere, with ``parity diff``'s verdict (issue 21, item 2).

Every run here is its own ``python -m parity`` process, as on two machines: the reference recorded (its port only
probed), the port recorded against that file (weights, batches and mapping read from it), the two files compared;
and ``parity diff`` of the same two programs. The two JSON reports must be the same report, figure for figure
(verdict, first divergence, every worst figure, the envelopes), apart from what says when and how long.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")
TINY = os.path.join(ROOT, "tests", "fixtures", "programs", "tiny_mlp.py")
#: what differs between two reports of the same comparison: when, how long, the command line
VARYING = {"created", "command", "seconds", "wall_seconds"}


def cli(*args, cwd=None, env=None):
    e = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "parity", *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=e, timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


def same_report(a, b, path=""):
    """The paths where two JSON reports differ (the :data:`VARYING` keys left out)."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in VARYING:
                continue
            if k not in a or k not in b:
                out.append(f"{path}/{k} only in {'b' if k not in a else 'a'}")
            else:
                out += same_report(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} vs {len(b)} items")
        for i, (x, y) in enumerate(zip(a, b)):
            out += same_report(x, y, f"{path}[{i}]")
    elif a != b:
        out.append(f"{path}: {a!r} vs {b!r}")
    return out


def record_and_compare(tmp_path, ref, port, *extra, env=None):
    """diff's report and the recorded comparison's: ``(diff rc, compare rc, diff json, compare json, compare stdout)``."""
    d = tmp_path / "diff.json"
    rc_d, out_d, err_d = cli("diff", ref, port, *extra, "--json", str(d), env=env)
    assert rc_d in (0, 1), err_d
    rt, pt, c = tmp_path / "ref.trace", tmp_path / "port.trace", tmp_path / "compare.json"
    rc, out, err = cli("record", ref, "--port", port, "-o", str(rt), *extra, env=env)
    assert rc == 0, err
    assert "as the reference" in out
    rc, out, err = cli("record", port, "--against", str(rt), "-o", str(pt), env=env)
    assert rc == 0, err
    rc_c, out_c, err_c = cli("compare", str(rt), str(pt), "--json", str(c), env=env)
    assert rc_c in (0, 1), err_c
    return rc_d, rc_c, json.loads(d.read_text()), json.loads(c.read_text()), out_c


def comparisons(report):
    return [c for case in report["cases"] for dt in case["dtypes"] for c in dt["comparisons"]]


def test_tiny_program_recorded_apart_gives_diffs_report(tmp_path):
    rc_d, rc_c, d, c, out = record_and_compare(tmp_path, TINY, TINY, "--steps", "3")
    assert rc_d == rc_c == 0
    assert same_report(d, c) == []
    # the float32 comparison used the envelope: the conditioning run and both drifts were in the files
    f32 = [x for x in comparisons(c) if x.get("dtype") == "float32"] or comparisons(c)[1:]
    assert f32 and any(w.get("envelope") is not None for x in f32 for w in x.get("worst_by_tensor", []))
    assert "parity diff's comparison of the two recordings" in out


@pytest.mark.slow
def test_float64_only_recording_gives_diffs_report(tmp_path):
    rc_d, rc_c, d, c, _ = record_and_compare(tmp_path, TINY, TINY, "--steps", "2", "--dtype", "float64")
    assert rc_d == rc_c == 0
    assert same_report(d, c) == []
    from parity.program.record import EPILOGUE
    from parity.program.record_file import read_end

    # a program's case runs in the dtypes asked: float64 alone has no float32 shadow, in diff as here
    assert read_end(str(tmp_path / "ref.trace"), EPILOGUE)["streams"] == ["float64", "plan"]


@pytest.mark.slow
def test_planted_zero_grad_recorded_apart_is_diffs_divergence(tmp_path):
    ref, port = os.path.join(EX, "seed002", "torch_mlp.py"), os.path.join(EX, "mistakes", "torch_mlp_no_zero_grad.py")
    rc_d, rc_c, d, c, out = record_and_compare(tmp_path, ref, port, "--steps", "3")
    assert rc_d == rc_c == 1
    assert same_report(d, c) == []
    for x in comparisons(c):
        first = x["first_divergence"]
        assert (first["step"], first["stage"], first["tensor"]) == (1, "gradients", "hidden2.weight")
    assert "zero-grad" in out


@pytest.mark.slow
def test_tf1_reference_and_torch_port_recorded_apart_agree_as_in_diff(tmp_path):
    pytest.importorskip("tensorflow")
    ref, port = os.path.join(EX, "seed002", "tf1_mlp.py"), os.path.join(EX, "seed002", "torch_mlp.py")
    rc_d, rc_c, d, c, _ = record_and_compare(tmp_path, ref, port, "--steps", "3")
    assert rc_d == rc_c == 0
    assert same_report(d, c) == []


# -- the file: several streams in one trace ----------------------------------------------------------------
def test_streams_are_read_apart_and_a_plain_reader_sees_the_main_one(tmp_path):
    from parity.program.record_file import ProgramTraceWriter, RunReader, read_end
    from parity.trace.file import TraceReader

    path = str(tmp_path / "p.trace")
    w = ProgramTraceWriter(path, {"role": "reference"})
    w.add("float64", {"port": "torch", "dtype": "float64"}, {"w": np.ones(3)})
    w.add("float32", {"port": "torch", "dtype": "float32"}, {"w": np.ones(3, np.float32)})
    for i in range(3):
        w.step("float64", {"loss": {"loss": np.float64(i)}})
        w.step("float32", {"loss": {"loss": np.float32(10 + i)}})
    w.close(end={"epilogue": {"notes": ["n1"]}})
    plain = TraceReader(path)
    assert [float(s["loss"]["loss"]) for s in plain.steps()] == [0.0, 1.0, 2.0] and plain.interrupted is None
    r32 = RunReader(path, "float32")
    assert r32.manifest["dtype"] == "float32" and r32.initial["w"].dtype == np.float32
    assert [float(s["loss"]["loss"]) for s in r32.steps()] == [10.0, 11.0, 12.0] and r32.interrupted is None
    assert read_end(path, "epilogue")["notes"] == ["n1"]


def test_a_cut_off_recording_is_read_as_interrupted(tmp_path):
    from parity.program.record_file import ProgramTraceWriter, RunReader

    path = str(tmp_path / "p.trace")
    w = ProgramTraceWriter(path, {"role": "reference"})
    w.add("float64", {"port": "torch"}, {})
    w.add("float32", {"port": "torch"}, {})
    w.step("float64", {"loss": {"loss": np.float64(1)}})
    w.step("float32", {"loss": {"loss": np.float32(1)}})
    partial = w.close(complete=False)
    assert partial.endswith(".partial")
    r = RunReader(partial, "float32")
    assert len(list(r.steps())) == 1 and r.interrupted == 1


# -- what is refused, one line, exit 2 -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    rc, _, err = cli("record", TINY, "--port", TINY, "-o", str(d / "ref.trace"), "--steps", "2", "--dtype", "float64")
    assert rc == 0, err
    rc, _, err = cli("record", TINY, "--against", str(d / "ref.trace"), "-o", str(d / "port.trace"))
    assert rc == 0, err
    return d


def test_the_reference_goes_first(recorded):
    rc, _, err = cli("compare", str(recorded / "port.trace"), str(recorded / "ref.trace"))
    assert rc == 2 and "give the reference first" in err


def test_a_port_recorded_against_another_reference_recording_is_refused(recorded, tmp_path):
    other = tmp_path / "other.trace"
    rc, _, err = cli("record", TINY, "--port", TINY, "-o", str(other), "--steps", "2", "--dtype", "float64")
    assert rc == 0, err
    rc, _, err = cli("compare", str(other), str(recorded / "port.trace"))
    assert rc == 2 and "recorded against another recording" in err


@pytest.mark.parametrize("args, words", [
    (["--port", TINY, "--against", "x.trace"], "one of the two"),
    ([], "one of the two"),
    (["--against", "{ref}", "--steps", "3"], "--steps"),
])
def test_record_program_refuses_unclear_requests(recorded, tmp_path, args, words):
    args = [a.replace("{ref}", str(recorded / "ref.trace")) for a in args]
    rc, _, err = cli("record", TINY, *args, "-o", str(tmp_path / "x.trace"))
    assert rc == 2, err
    assert words in err and err.count("\n") == 1


def test_a_port_of_another_framework_is_refused(recorded, tmp_path):
    tf_port = os.path.join(EX, "seed002", "tf1_mlp.py")
    rc, _, err = cli("record", tf_port, "--against", str(recorded / "ref.trace"), "-o", str(tmp_path / "x.trace"))
    assert rc == 2 and "was recorded with a torch port" in err
