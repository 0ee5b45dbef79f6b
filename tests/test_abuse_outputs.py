"""The contract under abuse (issue 22): output paths, users' files, full disks, signals, cut traces.

Each problem is one line and the exit code the contract gives it (2 bad input, 3 the user's own
code raised, never 4), decided before any port runs; writes leave no temporary file behind, even
on SIGTERM, and never collide. numpy-only cases (``seed004_oscillate --frameworks numpy``,
``PARITY_WORKERS=0``) unless marked ``tf``.
"""

import errno
import os
import signal
import struct
import subprocess
import sys

import pytest

from _cli_support import ROOT, one_error_line, run_main, strict_json, unwritable_dir

CASE = ("run", "seed004_oscillate", "--frameworks", "numpy")


@pytest.fixture(autouse=True)
def _in_process(monkeypatch):
    monkeypatch.setenv("PARITY_WORKERS", "0")


@pytest.fixture
def nothing_runs(monkeypatch):
    """parity diff / run must stop before any program or port runs."""
    import parity.program.prepare
    import parity.run.runner

    def must_not_run(*a, **k):
        raise AssertionError("a port ran before the outputs were checked")

    monkeypatch.setattr(parity.program.prepare, "compare_programs", must_not_run)
    monkeypatch.setattr(parity.run.runner, "run_case", must_not_run)


def _programs(tmp_path):
    ref, port = tmp_path / "ref.py", tmp_path / "port.py"
    for p in (ref, port):
        p.write_text("PARITY_FRAMEWORK = 'torch'\n\n\ndef parity_program():\n    return {}\n")
    return str(ref), str(port)



# -- 1. --save-mapping is checked with the other outputs ---------------------------------------------


@pytest.mark.parametrize("where", ["directory", "unwritable", "same as --json"])
def test_save_mapping_is_checked_before_anything_runs(capsys, tmp_path, nothing_runs, where):
    ref, port = _programs(tmp_path)
    target = {"directory": str(tmp_path), "unwritable": os.path.join(unwritable_dir(tmp_path), "m.json"),
              "same as --json": str(tmp_path / "r.json")}[where]
    code, out, err = run_main(capsys, "diff", ref, port, "--save-mapping", target, "--json", tmp_path / "r.json")
    assert code == 2, out + err
    line = one_error_line(err)
    assert "--save-mapping" in line and ("--json" in line if where == "same as --json" else "cannot write" in line)


def test_save_mapping_parent_is_created_before_the_programs_run(capsys, tmp_path, monkeypatch):
    import parity.program.prepare
    from parity.errors import ParityError

    target = tmp_path / "new" / "sub" / "m.json"

    def stop(*a, **k):
        assert target.parent.is_dir(), "the programs ran before --save-mapping's directory was made"
        raise ParityError("stopped after the check")

    monkeypatch.setattr(parity.program.prepare, "compare_programs", stop)
    code, out, err = run_main(capsys, "diff", *_programs(tmp_path), "--save-mapping", target)
    assert code == 2 and "stopped after the check" in one_error_line(err), out + err


def test_save_mapping_into_a_directory_leaves_no_temporary_file(tmp_path):
    from parity.errors import ParityError
    from parity.program.mapping import Mapping_, save_mapping

    (tmp_path / "m.json").mkdir()
    with pytest.raises(ParityError, match="directory"):
        save_mapping(Mapping_("a.py", "b.py"), str(tmp_path / "m.json"))
    assert os.listdir(tmp_path) == ["m.json"]


# -- 2. two options naming the same file ---------------------------------------------------------------


@pytest.mark.parametrize("first,second", [("--json", "--markdown"), ("--markdown", "--traces"), ("--json", "--html")])
def test_two_outputs_on_one_path_are_refused(capsys, tmp_path, nothing_runs, first, second):
    same = str(tmp_path / "out")
    also = os.path.join(str(tmp_path), ".", "out")  # the same file, spelled otherwise
    code, out, err = run_main(capsys, *CASE, first, same, second, also)
    assert code == 2, out + err
    line = one_error_line(err)
    assert first in line and second in line
    assert os.listdir(tmp_path) == []


def test_an_output_on_an_input_is_refused(capsys, tmp_path):
    a = tmp_path / "a.trace"
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", a)[0] == 0
    before = a.read_bytes()
    code, out, err = run_main(capsys, "compare", a, a, "--markdown", a)
    assert code == 2 and "--markdown" in one_error_line(err), out + err
    assert a.read_bytes() == before


# -- 3. a TF1 file that trains at import ----------------------------------------------------------------

TF1_TRAINS = '''\
"""A TF1 script that trains at import (no __main__ guard)."""
import numpy as np
import tensorflow.compat.v1 as tf

tf.disable_eager_execution()


def build_graph():
    x = tf.placeholder(tf.float32, (None, 3), name="x")
    y = tf.placeholder(tf.float32, (None, 1), name="y")
    W = tf.get_variable("W", (3, 1), initializer=tf.glorot_uniform_initializer(seed=1))  # line 11
    b = tf.get_variable("b", (1,), initializer=tf.zeros_initializer())
    loss = tf.reduce_mean(tf.square(tf.matmul(x, W) + b - y))
    return x, y, loss, tf.train.GradientDescentOptimizer(0.1).minimize(loss)


def batches():
    rng = np.random.default_rng(0)
    while True:
        yield {{"x": rng.normal(size=(4, 3)), "y": rng.normal(size=(4, 1))}}


{graph}
with tf.Session() as sess:
    sess.run(tf.global_variables_initializer())
    for _, batch in zip(range(2), batches()):
        print("TRAINED AT IMPORT", sess.run([train_op, loss], feed_dict={{x: batch["x"], y: batch["y"]}})[1])


def parity_program():
    {body}
    return {{"inputs": {{"x": x, "y": y}}, "loss": loss, "train_op": train_op, "data": batches}}
'''


@pytest.mark.tf
def test_a_tf1_file_that_trains_at_import_keeps_its_prints_out_of_the_report(capsys, tmp_path):
    path = tmp_path / "tf1_trains.py"  # the graph at top level, returned by parity_program()
    path.write_text(TF1_TRAINS.format(graph="x, y, loss, train_op = build_graph()", body="pass"))
    code, out, err = run_main(capsys, "diff", path, path, "--steps", "1", "--dtype", "float64")
    assert code == 0, out + err
    assert "TRAINED AT IMPORT" not in out
    assert err.count("TRAINED AT IMPORT") <= 2 and "trains at import" in err  # once, and a note says why


@pytest.mark.tf
def test_a_tf1_file_that_builds_its_graph_twice_is_exit_3_at_its_line(capsys, tmp_path):
    path = tmp_path / "tf1_twice.py"  # top level AND parity_program() build the graph: W twice
    path.write_text(TF1_TRAINS.format(graph="x, y, loss, train_op = build_graph()",
                                      body="x, y, loss, train_op = build_graph()"))
    code, out, err = run_main(capsys, "diff", path, path, "--steps", "1", "--dtype", "float64")
    assert code == 3, out + err
    line = one_error_line(err)
    assert "already exists" in line and "tf1_twice.py:11" in line and "TRAINED AT IMPORT" not in out


# -- 4. two runs sharing --traces ----------------------------------------------------------------------

SLOW_STEPS = """\
import sys, time
import parity.trace.file as f
real = f.TraceWriter.step
def slow(self, stages):
    time.sleep(0.15)
    real(self, stages)
f.TraceWriter.step = slow
from parity.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_two_runs_sharing_a_traces_directory_both_succeed(tmp_path):
    env = dict(os.environ, PARITY_WORKERS="0", PYTHONPATH=ROOT)
    traces = tmp_path / "traces"
    procs = [subprocess.Popen([sys.executable, "-c", SLOW_STEPS, *CASE, "--traces", str(traces), "--json",
                               str(tmp_path / f"r{i}.json")], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, out + err
    for i in range(2):
        assert strict_json((tmp_path / f"r{i}.json").read_text())["exit_code"] == 0
    assert sorted(os.listdir(traces)) == ["seed004_oscillate.numpy.float32.trace", "seed004_oscillate.numpy.float64.trace"]


# -- 5. a full disk; a directory where a file is expected ----------------------------------------------


class _FullDisk:
    """A file object whose writes fail as on a full disk (after ``after`` writes)."""

    def __init__(self, fh, after=0):
        self._fh, self._left = fh, after

    def write(self, data):
        if self._left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= 1
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def test_a_full_disk_while_writing_json_is_exit_2(capsys, tmp_path, monkeypatch):
    import types

    import parity.io

    real = os.fdopen
    fake_os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake_os.fdopen = lambda *a, **k: _FullDisk(real(*a, **k))
    monkeypatch.setattr(parity.io, "os", fake_os)
    target = tmp_path / "r.json"
    code, out, err = run_main(capsys, *CASE, "--json", target)
    assert code == 2, out + err
    assert one_error_line(err) == f"parity: error: cannot write {target}: No space left on device"
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_writing_traces_is_exit_2(capsys, tmp_path, monkeypatch):
    import builtins

    import parity.trace.file

    # the magic line, the manifest and the initial parameters are written; the first step is not
    monkeypatch.setattr(parity.trace.file, "open", lambda *a, **k: _FullDisk(builtins.open(*a, **k), after=3),
                        raising=False)
    code, out, err = run_main(capsys, *CASE, "--traces", tmp_path / "t")
    assert code == 2, out + err
    line = one_error_line(err)
    assert "cannot write" in line and "No space left on device" in line


def test_a_directory_given_to_compare_is_exit_2(capsys, tmp_path):
    code, out, err = run_main(capsys, "compare", tmp_path, tmp_path)
    assert code == 2 and "is a directory" in one_error_line(err), out + err


# -- 6. the user's file raises at import ----------------------------------------------------------------


def test_a_program_file_that_raises_at_import_is_exit_3_at_its_line(capsys, tmp_path):
    bad = tmp_path / "bad_import.py"
    bad.write_text("import numpy as np\nPARITY_FRAMEWORK = 'torch'\n\nnp.zeros(3) @ undefined_here  # noqa\n")
    code, out, err = run_main(capsys, "diff", bad, bad)
    assert code == 3, out + err
    line = one_error_line(err)
    assert "NameError" in line and "bad_import.py:4" in line


# -- 7. a directory for a file; a garbled mapping -------------------------------------------------------


@pytest.mark.parametrize("which", ["program", "mapping"])
def test_a_directory_for_an_input_file_says_so(capsys, tmp_path, which):
    ref, port = _programs(tmp_path)
    (tmp_path / "d.py").mkdir()
    argv = [tmp_path / "d.py", port] if which == "program" else [ref, port, "--mapping", tmp_path / "d.py"]
    code, out, err = run_main(capsys, "diff", *argv)
    assert code == 2, out + err
    line = one_error_line(err)
    assert "is a directory" in line and "does not exist" not in line


@pytest.mark.parametrize("shape", ["NaN", "-3", "2.5", '"3"'])
def test_a_bad_shape_in_a_mapping_is_one_clear_line(capsys, tmp_path, nothing_runs, shape):
    mapping = tmp_path / "m.json"
    mapping.write_text('{"format": 1, "params": [{"reference": "W", "port": "lin.weight", "shape": [%s, 1]}]}' % shape)
    code, out, err = run_main(capsys, "diff", *_programs(tmp_path), "--mapping", mapping)
    assert code == 2, out + err
    line = one_error_line(err)
    assert "entry 0" in line and "'shape'" in line and "W" in line


# -- 8. SIGTERM inside an atomic write -------------------------------------------------------------------

HOLD = """\
import sys, time
from parity.io import atomic_path, atomic_write
from parity.trace.file import TraceWriter
how, target = sys.argv[1], sys.argv[2]
if how == "trace":
    w = TraceWriter(target, {"case": "c", "port": "numpy", "dtype": "float64"}, atomic=True)
    print("ready", flush=True)
    time.sleep(60)
with (atomic_write(target) if how == "write" else atomic_path(target)) as fh:
    if how == "write":
        fh.write("half written")
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("how", ["write", "path", "trace"])
def test_sigterm_inside_an_atomic_write_leaves_no_temporary_file(tmp_path, how):
    out = tmp_path / "out"
    out.mkdir()
    target = out / ("w.trace" if how == "trace" else "r.json")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, how, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    # an interrupted trace keeps its readable prefix under NAME.trace.partial (the documented name)
    assert os.listdir(out) == (["w.trace.partial"] if how == "trace" else [])


# -- 9. compare --partial compares the steps both traces hold -------------------------------------------


def _cut_after(path, keep_steps: int, to):
    """A copy of a trace holding its manifest, initial parameters and the first ``keep_steps`` steps."""
    from parity.trace.file import MAGIC

    raw = path.read_bytes()
    at = len(MAGIC)
    for _ in range(2 + keep_steps):  # manifest, initial, steps
        (n,) = struct.unpack("<Q", raw[at:at + 8])
        at += 8 + n + 4
    to.write_bytes(raw[:at])
    return to


def test_compare_partial_compares_the_common_steps(capsys, tmp_path):
    full = tmp_path / "full.trace"
    assert run_main(capsys, "record", "seed004_oscillate", "--port", "numpy", "-o", full)[0] == 0
    cut = _cut_after(full, 2, tmp_path / "cut.trace")
    for a, b in ((full, cut), (cut, full)):
        code, out, err = run_main(capsys, "compare", a, b, "--partial", "--json", tmp_path / "c.json")
        assert code == 0, out + err
        text = " ".join(out.split())
        assert "compared the 2 steps both traces hold" in text and "not compared" in text, out
        notes = " ".join(strict_json((tmp_path / "c.json").read_text()).get("notes", []))
        assert "2 steps" in notes
    code, out, err = run_main(capsys, "compare", full, cut)
    assert code == 2 and "--partial" in one_error_line(err)  # without --partial: refused, as before
