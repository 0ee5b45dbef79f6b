"""The frameworks' start-up lines are kept off the user's screen, and nothing else is (parity/run/noise.py)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
         "I0000 00:00:1796416151.740329   29439 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
         "I0000 00:00:1796416138.706024   29378 port.cc:153] oneDNN custom operations are on. You may see slightly different")


def test_fd2_is_filtered_and_python_stderr_is_not():
    # C code writes to fd 2 (os.write stands in for TensorFlow's logging); Python's sys.stderr is left alone
    code = (
        "import os, sys\n"
        "from parity.run.noise import filtered_stderr\n"
        f"noise = {NOISE!r}\n"
        "with filtered_stderr():\n"
        "    os.write(2, ('\\n'.join(noise) + '\\nthe user\\'s own C-level line\\n').encode())\n"
        "    print(noise[1], file=sys.stderr)\n"
        "    print('a python line', file=sys.stderr)\n"
        "os.write(2, b'after the block\\n')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert "the user's own C-level line" in lines and "a python line" in lines and "after the block" in lines
    assert lines.count(NOISE[1]) == 1  # written by Python (not C): shown; the C-level copy is dropped
    assert NOISE[0] not in lines and NOISE[2] not in lines


@pytest.mark.tf
@pytest.mark.torch
def test_diff_shows_no_tensorflow_start_up_lines():
    ex = os.path.join(ROOT, "examples", "seed004")
    proc = subprocess.run([sys.executable, "-m", "parity", "diff", os.path.join(ex, "tf1_minimize.py"),
                           os.path.join(ex, "torch_minimize.py"), "--steps", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "absl::InitializeLog" not in proc.stderr and "cudart_stub" not in proc.stderr, proc.stderr
