"""Programs as people write them (issue 24 item 5): examples/habits/ run to a verdict, never exit 4.

Each pair runs ``parity diff`` in a fresh interpreter, as a user runs it (parity's own ``--json`` on the
command line, the files run several times in one process). Before the fixes each one stopped: flags
parsed parity's argv (exit 3/4), ``tf.layers`` under Keras 3 (exit 3), a Keras model's second run named
``conv2d_1`` (exit 3 "no weight 'conv2d/kernel' to load"), flat images / one-hot labels into a port taking
``[N, 1, 28, 28]`` and class indices (exit 3 at parity's own file), the probe forward bypassing the port's
``train_step`` (exit 3 at parity's own file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HABITS = os.path.join(ROOT, "examples", "habits")


def diff(tmp_path, ref, port, *extra):
    """``parity diff`` of two habits files in a fresh process: (exit code, stderr, the JSON report or None)."""
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "parity", "diff", os.path.join(HABITS, ref), os.path.join(HABITS, port),
           "--steps", "2", "--dtype", "float64", "--quiet-mapping", "-q", "--json", str(out), *extra]
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    report = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, proc.stderr, report


def agrees(tmp_path, ref, port, *extra):
    rc, err, report = diff(tmp_path, ref, port, *extra)
    assert rc == 0, err[-3000:]
    assert report is not None and report["cases"][0]["status"] == "passed"
    return err, report


def test_tf_app_flags_and_argparse_never_see_paritys_argv(tmp_path):
    # the reference defines tf.app.flags at import (the file runs once per capture: 4 times here), the
    # port calls parser.parse_args() at import; parity's --json/--steps must reach neither
    agrees(tmp_path, "tf1_flags_mlp.py", "torch_argparse_mlp.py")


def test_tf_layers_sets_legacy_keras_and_says_so(tmp_path):
    err, _ = agrees(tmp_path, "tf1_layers_mlp.py", "torch_mlp.py")
    assert "TF_USE_LEGACY_KERAS=1" in err


def test_a_file_that_trains_at_import_runs_with_the_note(tmp_path):
    err, _ = agrees(tmp_path, "tf1_trains_at_import.py", "torch_mlp.py")
    assert 'if __name__ == "__main__":' in err  # the note that says how to stop training at import


def test_a_keras_model_built_at_import_in_every_run_and_one_hot_labels_for_nll_loss(tmp_path):
    err, report = agrees(tmp_path, "keras_convnet.py", "torch_convnet_nchw.py")
    notes = " ".join(report["notes"] + report["cases"][0].get("notes", [])) + err
    assert "one-hot [N, 10] -> class indices" in notes.replace("\n", " ")


def test_flat_images_are_reshaped_to_the_ports_first_conv(tmp_path):
    err, report = agrees(tmp_path, "tf1_flat_convnet.py", "torch_convnet_nchw.py")
    text = (" ".join(report["notes"] + report["cases"][0].get("notes", [])) + err).replace("\n", " ")
    assert "x [N, 784] -> [N, 1, 28, 28]" in text


def test_the_probe_forward_goes_through_the_ports_train_step(tmp_path):
    # the port's model takes [N, 1, 28, 28]; only its train_step reshapes: a probe calling model(x) crashes
    agrees(tmp_path, "tf1_flat_convnet.py", "torch_convnet_train_step.py")


# -- in process: the pieces ---------------------------------------------------------------------------
def test_legacy_keras_is_read_from_the_source():
    from parity.run.frameworks import needs_legacy_keras

    assert needs_legacy_keras("h = tf.layers.dense(x, 3)")
    assert needs_legacy_keras("cell = tf.compat.v1.nn.rnn_cell.BasicLSTMCell(8)")
    assert needs_legacy_keras("y = tf.compat.v1.layers.conv2d(x, 4, 3)")
    assert not needs_legacy_keras("keras.layers.Dense(3)")
    assert not needs_legacy_keras("tf.keras.layers.LSTMCell(3)")


def test_a_file_defining_flags_runs_again_in_one_process(tmp_path):
    pytest.importorskip("absl")
    from parity.program.load import _exec_file

    path = tmp_path / "flags_prog.py"
    path.write_text("from absl import flags\nflags.DEFINE_integer('habit_units', 7, 'units')\nFLAGS = flags.FLAGS\n"
                    "import sys\nARGV = list(sys.argv)\n\ndef parity_program():\n    return FLAGS.habit_units\n")
    saved = sys.argv
    sys.argv = ["parity", "diff", "--json", "x.json"]
    try:
        for _ in range(3):  # absl's DuplicateFlagError on the second run before the fix
            mod = _exec_file(str(path))
            assert mod.parity_program() == 7
            assert mod.ARGV == [str(path)]  # not parity's argv
            sys.modules.pop(mod.__name__, None)
    finally:
        sys.argv = saved
    assert sys.argv is saved


def test_a_users_error_under_an_adapter_is_at_the_users_line(tmp_path):
    # the user's loss raises under parity's torch adapter: exit 3 at the user's file and line, not parity's
    path = tmp_path / "bad_port.py"
    path.write_text("import torch\nmodel = torch.nn.Linear(784, 10)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n\n"
                    "def loss(out, y):\n    raise ValueError('my loss is broken')\n\n"
                    "def parity_program():\n    return {'model': model, 'optimizer': opt, 'loss': loss}\n")
    cmd = [sys.executable, "-m", "parity", "diff", os.path.join(HABITS, "tf1_layers_mlp.py"), str(path),
           "--steps", "1", "--dtype", "float64", "--quiet-mapping", "-q"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"{path.name}:6 in loss" in proc.stderr and "my loss is broken" in proc.stderr


def test_a_sparse_placeholder_is_fed_from_sparse_tensor_values():
    # exit 4 before ('SparseTensor' object has no attribute 'name'); the data gives tf.SparseTensorValue
    # batches, made dense for both programs, and fed back to the placeholder as indices/values/shape
    from parity.program.prepare import compare_programs

    result = compare_programs(os.path.join(HABITS, "tf1_sparse_input.py"), os.path.join(HABITS, "torch_dense_input.py"),
                              steps=2, dtypes=("float64",))
    assert result.status == "passed", result.notes


def test_sparse_batch_values_are_made_dense():
    import numpy as np

    from parity.program.batches import as_array

    class Value:  # what tf.SparseTensorValue holds
        indices, values, dense_shape = np.array([[0, 1], [2, 0]]), np.array([3.0, 4.0]), np.array([3, 2])

    assert as_array(Value()).tolist() == [[0.0, 3.0], [0.0, 0.0], [4.0, 0.0]]


def _port_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _diff_file(ref, port):
    cmd = [sys.executable, "-m", "parity", "diff", str(ref), str(port), "--steps", "1", "--dtype", "float64",
           "--quiet-mapping", "-q"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_library_warning_in_the_users_code_is_shown_at_the_users_line(tmp_path):
    path = _port_file(tmp_path, "warn_port.py",
                      "import torch\nimport torch.nn.functional as F\n"
                      "model = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))\n"
                      "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n\n"
                      "def loss(out, y):\n    p = F.softmax(out)\n    return torch.mean(torch.sum(-y * torch.log(p), dim=1))\n\n"
                      "def parity_program():\n    return {'model': model, 'optimizer': opt, 'loss': loss}\n")
    proc = _diff_file(os.path.join(HABITS, "tf1_layers_mlp.py"), path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = [ln for ln in proc.stderr.splitlines() if "Implicit dimension choice for softmax" in ln]
    assert shown and all(ln.startswith(f"{path}:7: UserWarning") for ln in shown), shown


def test_tf_app_run_at_import_is_the_users_exit_at_their_line(tmp_path):
    # tf.app.run() at the top of the file: it ran parity's own main() before (sys.modules["__main__"])
    path = _port_file(tmp_path, "run_at_import.py",
                      "import tensorflow.compat.v1 as tf\n\ndef main(_):\n    print('training')\n\n"
                      "def parity_program():\n    return {}\n\ntf.app.run()\n")
    proc = _diff_file(path, os.path.join(HABITS, "torch_mlp.py"))
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"{path.name}:9 in <module>" in proc.stderr and 'if __name__ == "__main__":' in proc.stderr
    assert "invalid choice" not in proc.stderr  # parity's own argument parser never runs for the file


# -- round 2: a fed lr variable, drawn word ids, TF1 cells through an alias ----------------------------
def test_a_fed_lr_variable_and_word_ids_drawn_below_the_vocabulary(tmp_path):
    # "feeds": {lr: 0.5} with lr a resource variable: exit 4 before (KeyError: 20, DT_RESOURCE fed); no
    # data: word ids were drawn over the 10 classes, beyond the 6-row table (InvalidArgumentError, exit 4)
    _, report = agrees(tmp_path, "tf1_lr_variable_embedding.py", "torch_embedding_sgd.py")
    series = report["cases"][0]["dtypes"][0]["series"]
    assert series["tf1"]["learning_rate"] == [0.5, 0.5]  # the fed value, not the variable's initial 0.0
    # plain gradient descent updates the table's looked-up rows with ResourceScatterAdd (no Apply op): the
    # table is trained, its gradient densified and compared, never left as state
    params = {e["reference"]: e for e in report["extra"]["mapping"]["params"]}
    assert params["embedding"]["trainable"] is True, params["embedding"]


def test_tf1_cells_through_an_alias_set_legacy_keras(tmp_path):
    # `from tensorflow.compat.v1.nn import rnn_cell as rnn; rnn.BasicLSTMCell(...)`: not read from the source
    # before, so the cell raised "`BasicLSTMCell` is not available with Keras 3." (exit 3)
    err, _ = agrees(tmp_path, "tf1_rnn_alias_lstm.py", "torch_lstm_last.py")
    assert "TF_USE_LEGACY_KERAS=1" in err


def test_tf1_cells_and_rnn_builders_are_read_from_the_source():
    from parity.run.frameworks import needs_legacy_keras

    tf1 = "import tensorflow.compat.v1 as tf\n"
    assert needs_legacy_keras(tf1 + "from tensorflow.contrib import rnn\ncell = rnn.BasicLSTMCell(128, forget_bias=1.0)")
    assert needs_legacy_keras(tf1 + "outputs, states = rnn.static_rnn(cell, x, dtype=tf.float32)")
    assert needs_legacy_keras(tf1 + "out, _ = tf.nn.dynamic_rnn(cell, x, dtype=tf.float32)")
    assert needs_legacy_keras(tf1 + "cell = rnn.GRUCell(64)")
    assert not needs_legacy_keras(tf1 + "cell = tf.keras.layers.LSTMCell(64)")  # Keras 3 has it
    assert not needs_legacy_keras("import torch\ncell = torch.nn.LSTMCell(3, 4)  # TF's BasicLSTMCell")
    assert not needs_legacy_keras("import torch.nn as nn\ncell = nn.GRUCell(3, 4)")


def test_the_keras_3_error_says_to_set_legacy_keras():
    from parity.program.load import ProgramError

    def raise_it():
        raise AttributeError("`BasicLSTMCell` is not available with Keras 3.")

    try:
        raise_it()
    except AttributeError as exc:
        err = ProgramError(__file__, "at import", exc)
    assert "set TF_USE_LEGACY_KERAS=1 (tf.layers / tf.nn.rnn_cell are Keras 2 APIs)" in str(err)
    assert "test_program_habits.py" in str(err)  # still at the user's line
    assert "\n" not in str(err)


def test_integer_inputs_bounds_are_read_from_the_graph():
    import tensorflow as tf

    from tf_impl.v1.capture.program import lookup_bounds

    tf1 = tf.compat.v1
    with tf.Graph().as_default():
        ids = tf1.placeholder(tf.int32, [None, 4])
        y = tf1.placeholder(tf.int64, [None])
        other = tf1.placeholder(tf.int32, [None])
        x = tf1.placeholder(tf.float32, [None, 3])
        table = tf1.get_variable("table", [6, 3])  # a resource variable: ResourceGather
        logits = tf.reduce_mean(tf.nn.embedding_lookup(table, tf.reshape(ids, [-1, 2, 2])), axis=[1, 2])
        logits = tf.matmul(logits, tf1.get_variable("w", [3, 10])) + x[:, :1]
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        unknown = tf1.placeholder(tf.float32, [None, 3])  # a table of unknown size
        tf.gather(unknown, other)
        assert lookup_bounds({"ids": ids, "y": y, "other": other, "x": x}) == {"ids": 6, "y": 10, "other": None}


def test_drawn_integer_inputs_stay_below_their_bound():
    import numpy as np

    from parity.errors import ParityError
    from parity.program.batches import draw_batches

    specs = {"ids": ((None, 5), "int32"), "y": ((None,), "int64")}
    batches = draw_batches(specs, 20, np.random.default_rng(0), 50, 8, {"ids": 6})
    ids = np.concatenate([b["ids"].ravel() for b in batches])
    assert ids.max() == 5 and ids.min() == 0  # 800 draws over 6 values: each end is reached
    assert max(int(b["y"].max()) for b in batches) > 6  # the others still over the classes
    with pytest.raises(ParityError, match="give 'data'"):
        draw_batches(specs, 1, np.random.default_rng(0), 50, 8, {"ids": None})
