"""A TF1 program captured in float32 and then in float64 in one process (``parity diff``'s float32 worker: its run,
then the conditioning run) builds it as written once: the float64 capture takes the dtype the float32 capture read
(``tf_impl/v1/capture/__init__.py``, ``_WRITTEN``) and checks it by its own build. The graph and the notes are those
of a float64 capture made alone; a program whose float64 build fails (an explicit float32 cast) still falls back to
rewriting its as-written graph, and says so, as alone.
"""

from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

PROGRAM = '''
import tensorflow as tf
tf1 = tf.compat.v1


def parity_program():
    open({count!r}, "a").write("x")  # one character per build
    x = tf1.placeholder(tf.float32, [None, 3], name="x")
    y = tf1.placeholder(tf.float32, [None, 2], name="y")
    w = tf1.get_variable("w", [3, 2])
    loss = tf.reduce_mean(tf.square(tf.matmul({h}, w) - y))
    opt = tf1.train.GradientDescentOptimizer(0.1)
    return {{"inputs": {{"x": x, "y": y}}, "loss": loss, "train_op": opt.minimize(loss), "optimizer": opt}}
'''


def _captured(tmp_path, h: str, dtypes):
    """Each capture of a fresh program file in ``dtypes`` order: [(notes, GraphDef bytes, builds it made)]."""
    from parity.program.load import capture, load_program
    import tf_impl.v1.capture as adapter

    count = tmp_path / f"builds-{'-'.join(dtypes)}"
    path = tmp_path / f"prog_{'_'.join(dtypes)}.py"
    path.write_text(PROGRAM.format(count=str(count), h=h))
    program = load_program(str(path))
    program.seed = 0
    for key in [k for k in adapter._WRITTEN if k[0] == str(path)]:
        adapter._WRITTEN.pop(key)
    out, before = [], 0
    for dtype in dtypes:
        prog = capture(program, dtype)
        try:
            built = len(count.read_text())
            # (the file's own path differs between the runs: names only)
            out.append((prog.notes(), prog.graph.as_graph_def().SerializeToString(deterministic=True), built - before))
            before = built
        finally:
            prog.close()
    return out


def test_the_first_float64_capture_in_a_fresh_interpreter_is_built_retyped(tmp_path):
    # The first time in a process, building the program imports `tensorflow.compat.v1` as a module of its own,
    # which becomes tf.compat.v1 (the program's `tf1`) while parity had patched the first one: the placeholders
    # stayed float32 and the build fell back to rewriting the as-written graph ("failed" in its note), only
    # the first time (tf_impl/v1/capture/dtype.py, _compat_v1_modules).
    import os
    import subprocess
    import sys

    path = tmp_path / "prog.py"
    path.write_text(PROGRAM.format(count=str(tmp_path / "count"), h="x"))
    code = ("from parity.program.load import capture, load_program\n"
            f"program = load_program({str(path)!r}); program.seed = 0\n"
            "for _ in range(2):\n"
            "    prog = capture(program, 'float64'); print(repr(prog.notes()[0])); prog.close()\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=root), cwd=str(tmp_path))
    notes = out.stdout.splitlines()
    assert len(notes) == 2, out.stderr[-2000:]
    assert all("was built with its placeholders and variables made float64" in n for n in notes), notes


def test_a_float64_capture_after_a_float32_one_builds_once_and_is_the_same(tmp_path):
    (alone,) = _captured(tmp_path, "x", ["float64"])
    f32, f64 = _captured(tmp_path, "x", ["float32", "float64"])
    assert alone[2] == 2  # as written (to learn its dtype), then in float64
    assert f32[2] == 1 and f64[2] == 1  # the float64 build only: the float32 capture read the dtype
    assert f64[:2] == alone[:2]
    assert any("was built with its placeholders and variables made float64" in n for n in f64[0]), f64[0]


def test_a_float64_build_that_fails_after_a_float32_capture_falls_back_as_alone(tmp_path):
    (alone,) = _captured(tmp_path, "tf.cast(x, tf.float32)", ["float64"])
    f32, f64 = _captured(tmp_path, "tf.cast(x, tf.float32)", ["float32", "float64"])
    assert any("failed" in n for n in alone[0]), alone[0]  # the as-written graph rewritten to float64
    assert f64[:2] == alone[:2]
    assert f64[2] == 3  # the guess's float64 build failed: then as before (as written, float64 again)
