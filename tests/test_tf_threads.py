"""PARITY_TF_THREADS: TensorFlow's eager threads in the processes running TensorFlow ports and programs
(tf_impl.tensorflow(); default 1, as torch's side; 0 keeps TensorFlow's own). A process of its own each: the
threads can be set only before TensorFlow's eager context starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = ("import tf_impl; tf = tf_impl.tensorflow(); "
        "print(tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads())")


def _threads(value):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("PARITY_TF_THREADS", None)
    if value is not None:
        env["PARITY_TF_THREADS"] = value
    return subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_one_thread_by_default_and_the_users_choice_else():
    assert _threads(None).stdout.split() == ["1", "1"]
    assert _threads("3").stdout.split() == ["3", "3"]
    assert _threads("0").stdout.split() == ["0", "0"]  # TensorFlow's own choice (0: one per core)


def test_a_bad_value_is_a_one_line_error():
    out = _threads("two")
    assert out.returncode != 0
    assert "PARITY_TF_THREADS must be a number of threads" in out.stderr
