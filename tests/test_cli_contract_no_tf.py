"""The command line without TensorFlow (issue 11): every TF-free command works, a port's crash names its line.

These run ``python -m parity`` in a subprocess whose import system refuses ``tensorflow`` (a
sitecustomize on PYTHONPATH), which proves TensorFlow is never imported. The rest of the
contract runs in this process: tests/test_cli_contract_ports.py (refusals, crashes,
divergences of a user's port) and tests/test_cli_contract_outputs.py (files, JSON, Ctrl-C,
exit codes).
"""

import os
import subprocess
import sys

import pytest

from _cli_support import ROOT, line_of, one_error_line, strict_json, user_port, validate


# -- the TF-free subprocesses: TensorFlow blocked at import --------------------------------

BLOCKER = """\
import sys

# Simulate a machine without TensorFlow: `import tensorflow` raises ModuleNotFoundError and
# importlib.util.find_spec("tensorflow") returns None, as when it is not installed.
for _name in ("tensorflow", "tf_keras", "keras"):
    sys.modules[_name] = None
"""


@pytest.fixture(scope="module")
def no_tf(tmp_path_factory):
    """Run ``python -m parity ARGS`` in a subprocess where TensorFlow is not importable."""
    site = tmp_path_factory.mktemp("no_tf_site")
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), ROOT]), TF_CPP_MIN_LOG_LEVEL="3")

    def run(*args, cwd=None):
        return subprocess.run([sys.executable, "-m", "parity", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd or ROOT, timeout=600)

    return run


def test_without_tensorflow_every_tf_free_command_works(no_tf, tmp_path):
    """list / pitfalls / run / check / record / compare need no TF; TF ports are 'not run' with one note."""
    proc = no_tf("list")
    assert proc.returncode == 0 and "seed004_oscillate" in proc.stdout, proc.stderr
    proc = no_tf("pitfalls")
    assert proc.returncode == 0, proc.stderr
    name = proc.stdout.split()[0]
    proc = no_tf("explain", name)
    assert proc.returncode == 0 and name in proc.stdout, proc.stderr
    # run (one process: torch starts once): the TF ports are listed as not run, one note with
    # the install command, torch vs numpy compared; a must-refuse case checks torch's refusal
    # only (the TF ports are not run, never a pass); a case whose every port needs TF is not run.
    out = tmp_path / "r.json"
    proc = no_tf("run", "seed004_oscillate", "seed004_nothing_to_train", "seed002_keras_sgd_momentum",
                 "--dtype", "float64", "--json", out, "-v")  # -v: a line per pair
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [l for l in proc.stderr.splitlines() if l.startswith("note:")]
    assert len(notes) == 1 and "TensorFlow is not installed" in notes[0] and "pip install" in notes[0], proc.stderr
    assert "torch vs numpy" in proc.stdout and "refused (expected)" in proc.stdout
    assert "seed004_nothing_to_train: tf1, tf2 not run: TensorFlow is not installed" in " ".join(proc.stdout.split())
    assert "tf1                  float64" not in proc.stdout  # no TF row claims a refusal
    assert "not run (no port could run): seed002_keras_sgd_momentum" in proc.stdout
    doc = strict_json(out.read_text())
    validate(doc)
    oscillate, nothing, keras = doc["cases"]
    assert {p["port"] for p in oscillate["ports_not_run"]} == {"tf1", "tf1:minimize", "tf2"}
    assert oscillate["status"] == "passed" and oscillate["ports"] == ["torch", "numpy"]
    assert nothing["status"] == "passed" and nothing["ports"] == ["torch"]
    assert keras["status"] == "not_run" and doc["summary"]["not_run"] == ["seed002_keras_sgd_momentum"]
    assert "TensorFlow is not installed" in doc["frameworks"]["not_installed"]["tf1"]
    # record a TF port: one line, exit 2, the install command.
    proc = no_tf("record", "seed004_oscillate", "--port", "tf1", "-o", tmp_path / "t.trace")
    assert proc.returncode == 2 and "pip install" in one_error_line(proc.stderr)
    # record + compare without TF (the user's file in the second: no torch start-up again).
    a, b = tmp_path / "numpy.trace", tmp_path / "user.trace"
    assert no_tf("record", "seed004_oscillate", "--port", "numpy", "-o", a).returncode == 0
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", user_port(tmp_path, "ok"), "-o", b)
    assert proc.returncode == 0, proc.stderr
    proc = no_tf("compare", a, b)
    assert proc.returncode == 0 and "exact" in proc.stdout, proc.stderr
    # check a user's torch port: compared with the numpy port, the TF ones not run.
    proc = no_tf("check", "seed004_oscillate", "--torch-port", user_port(tmp_path, "ok"), "--dtype", "float64")
    assert proc.returncode == 0 and "numpy vs torch" in proc.stdout, proc.stdout + proc.stderr  # yours last


def test_port_calling_sys_exit_is_a_crash_with_its_line(no_tf, tmp_path):
    port = user_port(tmp_path, "exit")
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", port, "-o", tmp_path / "x.npz")
    assert proc.returncode == 3, proc.stderr
    line = one_error_line(proc.stderr)
    assert "sys.exit(3)" in line and f"{os.path.basename(port)}:{line_of(port, 'sys.exit(3)')}" in line, line
    assert not (tmp_path / "x.npz").exists()


def test_traceback_after_the_subcommand(no_tf, tmp_path):
    proc = no_tf("record", "seed004_oscillate", "--port", "numpy", "--port-file", user_port(tmp_path, "raise"),
                 "-o", tmp_path / "x.npz", "--traceback")
    assert proc.returncode == 3 and "Traceback (most recent call last)" in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("parity: error:")


def test_docs_in_a_users_project_does_not_touch_its_docs(no_tf, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "cases.md").write_text("the user's own page\n")
    out = tmp_path / "generated"
    proc = no_tf("docs", "--out", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "cases.md").exists() and (tmp_path / "docs" / "cases.md").read_text() == "the user's own page\n"
